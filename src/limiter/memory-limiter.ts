import { periodOf, secondsUntil } from '../core/calendar.js';
import type { Clock } from '../core/clock.js';
import type { Decision, WindowState } from '../core/decision.js';
import type { WindowName } from '../core/windows.js';
import type { ConsumeRequest, Limiter } from './limiter.js';

/** Usage of one window in one period. */
interface WindowCounter {
  periodStartMs: number;
  used: number;
}

/** A subject's counters, and when the last of their periods ends. */
interface SubjectCounters {
  readonly byWindow: Map<WindowName, WindowCounter>;
  /** Epoch ms at which every counter here belongs to a past period. */
  expiresAtMs: number;
}

export interface MemoryLimiterOptions {
  readonly clock: Clock;
  /** How often stale subjects are dropped, in ms; 0 disables the timer (tests call sweep()). */
  readonly sweepIntervalMs?: number;
}

/**
 * A single-instance limiter holding counters in process memory. It gives the
 * same answers as the Redis limiter (one contract suite pins both), but its
 * counts die with the process and are not shared between instances.
 *
 * Memory is bounded by the subjects active in their current periods: every
 * subject sits in an expiry bucket keyed by the end of its longest period
 * (calendar alignment makes these few), and sweep() drops whole buckets once
 * their time has passed, touching only what expired.
 */
export class MemoryLimiter implements Limiter {
  private readonly subjects = new Map<string, SubjectCounters>();
  private readonly expiryBuckets = new Map<number, Set<string>>();
  private readonly clock: Clock;
  private readonly sweepTimer: NodeJS.Timeout | undefined;

  constructor(options: MemoryLimiterOptions) {
    this.clock = options.clock;
    const intervalMs = options.sweepIntervalMs ?? 10_000;
    if (intervalMs > 0) {
      this.sweepTimer = setInterval(() => this.sweep(), intervalMs);
      this.sweepTimer.unref();
    }
  }

  consume(request: ConsumeRequest): Promise<Decision> {
    return Promise.resolve(this.consumeNow(request));
  }

  /** Number of subjects holding counters; for tests and sizing. */
  get subjectCount(): number {
    return this.subjects.size;
  }

  /** Drops every subject whose counters all belong to past periods. */
  sweep(): void {
    const nowMs = this.clock.now();
    for (const [expiresAtMs, bucket] of this.expiryBuckets) {
      if (expiresAtMs > nowMs) continue;
      for (const subject of bucket) this.subjects.delete(subject);
      this.expiryBuckets.delete(expiresAtMs);
    }
  }

  close(): Promise<void> {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.subjects.clear();
    this.expiryBuckets.clear();
    return Promise.resolve();
  }

  private consumeNow({ subject, windows, cost }: ConsumeRequest): Decision {
    const nowMs = this.clock.now();
    const entry = this.subjects.get(subject);
    const periods = windows.map((window) => periodOf(window.name, nowMs));
    const used = windows.map((window, i) => {
      const counter = entry?.byWindow.get(window.name);
      return counter !== undefined && counter.periodStartMs === periods[i]!.startMs ? counter.used : 0;
    });

    const violated: WindowName[] = [];
    windows.forEach((window, i) => {
      if (used[i]! + cost > window.limit) violated.push(window.name);
    });
    const allowed = violated.length === 0;
    if (allowed && windows.length > 0) this.charge(subject, entry, windows, periods, used, cost);

    const states: WindowState[] = windows.map((window, i) => {
      const period = periods[i]!;
      const usedAfter = used[i]! + (allowed ? cost : 0);
      return {
        name: window.name,
        limit: window.limit,
        remaining: Math.max(0, window.limit - usedAfter),
        resetSeconds: secondsUntil(period.endMs, nowMs),
        periodSeconds: Math.round((period.endMs - period.startMs) / 1000),
      };
    });
    if (allowed) return { allowed: true, windows: states };
    const retryAfterSeconds = Math.max(
      ...states.filter((state) => violated.includes(state.name)).map((state) => state.resetSeconds),
    );
    return { allowed: false, reason: 'window', violated, retryAfterSeconds, windows: states };
  }

  private charge(
    subject: string,
    existing: SubjectCounters | undefined,
    windows: ConsumeRequest['windows'],
    periods: ReadonlyArray<{ startMs: number; endMs: number }>,
    used: readonly number[],
    cost: number,
  ): void {
    const entry = existing ?? { byWindow: new Map<WindowName, WindowCounter>(), expiresAtMs: 0 };
    if (existing === undefined) this.subjects.set(subject, entry);
    let expiresAtMs = 0;
    windows.forEach((window, i) => {
      const period = periods[i]!;
      entry.byWindow.set(window.name, { periodStartMs: period.startMs, used: used[i]! + cost });
      expiresAtMs = Math.max(expiresAtMs, period.endMs);
    });
    if (expiresAtMs !== entry.expiresAtMs) {
      this.expiryBuckets.get(entry.expiresAtMs)?.delete(subject);
      entry.expiresAtMs = expiresAtMs;
      let bucket = this.expiryBuckets.get(expiresAtMs);
      if (bucket === undefined) {
        bucket = new Set();
        this.expiryBuckets.set(expiresAtMs, bucket);
      }
      bucket.add(subject);
    }
  }
}
