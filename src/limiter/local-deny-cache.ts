import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/clock.js';
import { keyCountingId } from '../core/counting-id.js';
import type { Denial, PolicyState } from '../core/decision.js';
import type { Policy } from '../core/policy.js';

/** A subject's exhausted counters: counterId → the epoch ms until which it stays exhausted. */
interface ExhaustedCounters {
  readonly untilMs: Map<string, number>;
  /** The denial's policy states and when they were taken, to answer with. */
  readonly states: ReadonlyMap<string, PolicyState>;
  readonly atMs: number;
}

/**
 * Remembers subjects that a store denied on a fixed window with nothing left
 * (remaining 0: no request of any cost can pass) until that window resets,
 * so an instance can deny them again without calling the store — what keeps
 * Redis alive under a flood from one caller.
 *
 * Bounded to `maxEntries` subjects (least recently used go first). An entry
 * never outlives the window's end: it is kept until one second before the
 * reported reset (the reset is rounded up to whole seconds), so it may lapse
 * early, which only costs a store call.
 */
export class LocalDenyCache {
  private readonly entries: LRUCache<string, ExhaustedCounters> | undefined;

  constructor(
    maxEntries: number,
    private readonly clock: Clock,
  ) {
    this.entries = maxEntries > 0 ? new LRUCache({ max: maxEntries }) : undefined;
  }

  /** Records what `denial` says is exhausted, if anything is for a second or more. */
  remember(subject: string, policies: readonly Policy[], denial: Denial): void {
    if (this.entries === undefined) return;
    const nowMs = this.clock.now();
    const untilMs = new Map<string, number>();
    denial.policies.forEach((state, i) => {
      if (!denial.violated.includes(state.name) || state.remaining > 0 || state.resetSeconds <= 1) return;
      // Past its limit, a policy allowing overage still admits smaller costs until the overage is spent too.
      const overage = policies[i]!.overage;
      if (overage !== undefined && (state.overage ?? 0) < overage.max) return;
      // A policy covered by credits is freed by a grant on any instance, which this cache would not hear of.
      if (policies[i]!.credits !== undefined) return;
      untilMs.set(policies[i]!.counterId, nowMs + (state.resetSeconds - 1) * 1000);
    });
    if (untilMs.size === 0) return;
    const states = new Map(denial.policies.map((state) => [state.name, state]));
    this.entries.set(subject, { untilMs, states, atMs: nowMs });
  }

  /** A denial for a request on `policies`, if one of them is known to be exhausted now. */
  check(subject: string, policies: readonly Policy[]): Denial | undefined {
    const entry = this.entries?.get(subject);
    if (entry === undefined) return undefined;
    const nowMs = this.clock.now();
    const elapsedSeconds = Math.floor((nowMs - entry.atMs) / 1000);
    const violated: string[] = [];
    const states: PolicyState[] = [];
    let retryAfterSeconds = 0;
    let quota = false;
    for (const policy of policies) {
      const known = entry.states.get(policy.name);
      if (known !== undefined) {
        const state = { ...known, resetSeconds: Math.max(1, known.resetSeconds - elapsedSeconds) };
        states.push(state);
        const untilMs = entry.untilMs.get(policy.counterId);
        if (untilMs !== undefined && untilMs > nowMs) {
          violated.push(policy.name);
          retryAfterSeconds = Math.max(retryAfterSeconds, state.resetSeconds);
          quota ||= policy.kind === 'quota';
        }
      }
    }
    if (violated.length === 0) {
      if ([...entry.untilMs.values()].every((untilMs) => untilMs <= nowMs)) this.entries?.delete(subject);
      return undefined;
    }
    return { allowed: false, reason: quota ? 'quota' : 'window', violated, retryAfterSeconds, policies: states };
  }

  /** Forgets a subject (after an admin reset or a credit grant). */
  forget(subject: string): void {
    this.entries?.delete(subject);
  }

  /**
   * Forgets every counting id of the subject's keys (`<subject>/key:<id>`,
   * see core/counting-id.ts). A scan of the cache: made only when a subject
   * changed (a reset, a grant, a new plan), never per request.
   */
  forgetKeysOf(subject: string): void {
    if (this.entries === undefined) return;
    const prefix = keyCountingId(subject, '');
    for (const countingId of [...this.entries.keys()]) if (countingId.startsWith(prefix)) this.entries.delete(countingId);
  }

  /** False when `max_entries` is 0: every check misses. */
  get enabled(): boolean {
    return this.entries !== undefined;
  }

  get size(): number {
    return this.entries?.size ?? 0;
  }
}
