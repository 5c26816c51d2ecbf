import { createHash } from 'node:crypto';
import { crossedSpike, type DenialSpike } from '../core/abuse.js';
import type { Clock } from '../core/clock.js';
import type { DenialFleetCounter } from '../core/denial-fleet.js';
import type { DenialTally, TalliedDenials } from '../core/denial-tally.js';
import type { QuotaEvent } from '../core/quota-events.js';
import type { SubjectBlockStore } from '../core/subject-blocks.js';
import type { DenialCount } from '../db/denials.js';

/** Where the flusher writes denials (the `denials` table); absent without a database. */
export interface DenialSink {
  /** Adds the counts to the stored ones. */
  add(counts: readonly DenialCount[]): Promise<void>;
  /** Deletes the counts of minutes before `before`. */
  prune(before: Date): Promise<void>;
}

export interface DenialFlusherOptions {
  readonly tally: DenialTally;
  readonly fleet: DenialFleetCounter;
  readonly sink?: DenialSink | undefined;
  /** Where `subject.denial_spike` events go (the event outbox); absent: spikes are only logged and counted. */
  readonly events?: { append(events: readonly QuotaEvent[]): Promise<void> } | undefined;
  readonly blocks: SubjectBlockStore;
  /** Writes the audit row of a block (actor `gateway:abuse`); absent without a database. */
  readonly auditBlock?: ((spike: DenialSpike) => Promise<void>) | undefined;
  readonly clock: Clock;
  /** Pause between two flushes, in ms (1,000: spikes are seen within about a second). */
  readonly intervalMs: number;
  /** Told of every spike, after its event and block (for the log and a metric). */
  readonly onSpike?: ((spike: DenialSpike) => void) | undefined;
  /** Told of a failed step (`fleet`, `database`, `event`, `block`, `audit`); the flusher goes on. */
  readonly onError?: ((what: string, error: unknown) => void) | undefined;
}

/** Rows kept for the database while it does not answer; older ones are dropped first. */
const MAX_PENDING_ROWS = 100_000;
/** How long denial rows are kept, in ms (the views read at most 24 hours). */
const RETENTION_MS = 25 * 3_600_000;
/** How often old rows are deleted, in ms. */
const PRUNE_INTERVAL_MS = 3_600_000;

/** The stable id of a spike's event: one per subject and minute (the subject hashed, never in the id). */
export function denialSpikeEventId(subject: string, minuteMs: number): string {
  return `denial_spike:${createHash('sha256').update(subject).digest('hex').slice(0, 24)}:${minuteMs}`;
}

/**
 * Takes the denials counted on the request path (DenialTally) every
 * `intervalMs`, off that path: adds them to the fleet's count per subject
 * and minute (Redis: one INCRBY and PEXPIRE per subject that had denials,
 * pipelined; memory: this instance's), raises `subject.denial_spike` for
 * each subject whose addition crossed its plan's `abuse.denials_per_minute`
 * (exactly once per subject and minute across the fleet: only one
 * addition can cross), blocks it with `action: block`, and adds the counts
 * to the `denials` table. A flush that fails to reach the fleet counter
 * loses those counts for spike detection only; rows the database refused
 * are retried (up to MAX_PENDING_ROWS).
 */
export class DenialFlusher {
  readonly #options: DenialFlusherOptions;
  #pending: DenialCount[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #lastPruneMs = Number.NEGATIVE_INFINITY;

  constructor(options: DenialFlusherOptions) {
    this.#options = options;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.flush(), this.#options.intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and runs a last flush. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }

  /** One flush, after any running one; never rejects (failures go to onError). */
  flush(): Promise<void> {
    this.#running = this.#running.then(() => this.#flushNow());
    return this.#running;
  }

  async #flushNow(): Promise<void> {
    const { tally, fleet, sink, onError } = this.#options;
    const batch = tally.drain();
    if (batch.length > 0) {
      let totals: number[] | undefined;
      try {
        totals = await fleet.add(batch);
      } catch (error) {
        onError?.('fleet', error);
      }
      if (totals !== undefined) {
        for (let i = 0; i < batch.length; i++) await this.#checkSpike(batch[i]!, totals[i]!);
      }
      if (sink !== undefined) {
        for (const entry of batch) this.#pending.push({ subjectId: entry.subject, minute: new Date(entry.minuteMs), count: entry.count });
        if (this.#pending.length > MAX_PENDING_ROWS) this.#pending.splice(0, this.#pending.length - MAX_PENDING_ROWS);
      }
    }
    if (sink === undefined) return;
    if (this.#pending.length > 0) {
      const rows = this.#pending;
      this.#pending = [];
      try {
        await sink.add(rows);
      } catch (error) {
        this.#pending = [...rows, ...this.#pending];
        onError?.('database', error);
      }
    }
    const nowMs = this.#options.clock.now();
    if (nowMs - this.#lastPruneMs >= PRUNE_INTERVAL_MS) {
      this.#lastPruneMs = nowMs;
      await sink.prune(new Date(nowMs - RETENTION_MS)).catch((error: unknown) => onError?.('database', error));
    }
  }

  async #checkSpike(entry: TalliedDenials, total: number): Promise<void> {
    const rule = entry.abuse;
    if (rule === undefined || !crossedSpike(rule, total - entry.count, total)) return;
    const { events, blocks, auditBlock, clock, onError, onSpike } = this.#options;
    const nowMs = clock.now();
    const spike: DenialSpike = {
      subject: entry.subject,
      plan: entry.plan,
      minuteMs: entry.minuteMs,
      denials: total,
      threshold: rule.denialsPerMinute,
      action: rule.action,
      blockedUntilMs: rule.action === 'block' ? nowMs + rule.blockMs : undefined,
    };
    if (spike.blockedUntilMs !== undefined) {
      await blocks.block(spike.subject, spike.blockedUntilMs).catch((error: unknown) => onError?.('block', error));
      await auditBlock?.(spike).catch((error: unknown) => onError?.('audit', error));
    }
    await events?.append([spikeEvent(spike, nowMs)]).catch((error: unknown) => onError?.('event', error));
    onSpike?.(spike);
  }
}

/** The `subject.denial_spike` event of a spike. */
export function spikeEvent(spike: DenialSpike, nowMs: number): QuotaEvent {
  return {
    id: denialSpikeEventId(spike.subject, spike.minuteMs),
    type: 'subject.denial_spike',
    timestampMs: nowMs,
    data: {
      subject: spike.subject,
      plan: spike.plan,
      denials: spike.denials,
      threshold: spike.threshold,
      minute_start: new Date(spike.minuteMs).toISOString(),
      action: spike.action,
      blocked_until: spike.blockedUntilMs === undefined ? null : new Date(spike.blockedUntilMs).toISOString(),
    },
  };
}
