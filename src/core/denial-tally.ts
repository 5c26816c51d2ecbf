import type { AbuseRule } from './abuse.js';

/** Denials of one subject in one minute, counted here since the last drain. */
export interface TalliedDenials {
  readonly subject: string;
  /** Start of the minute, epoch ms. */
  readonly minuteMs: number;
  readonly count: number;
  /** The subject's plan when it was denied. */
  readonly plan: string;
  /** The plan's abuse rule, if it has one. */
  readonly abuse: AbuseRule | undefined;
}

interface Entry {
  count: number;
  readonly plan: string;
  readonly abuse: AbuseRule | undefined;
}

/**
 * This instance's denials per subject and minute, counted in memory on the
 * denial path only (an admitted request never touches it), drained off the
 * request path by the denial flusher every second.
 *
 * Bounded: at most `maxSubjects` subjects a minute between two drains; the
 * denials of further subjects are not counted (`dropped` counts them), so a
 * flood of distinct callers costs a fixed amount of memory. A subject
 * already counted in the minute costs one Map lookup and an increment.
 */
export class DenialTally {
  #minuteMs = 0;
  #current = new Map<string, Entry>();
  /** Minutes that ended since the last drain, with their counts. */
  #closed: TalliedDenials[] = [];
  /** Denials not counted because the minute's map was full. */
  dropped = 0;

  constructor(private readonly maxSubjects: number) {}

  /** Counts one denial of `subject` at `nowMs` (epoch ms). */
  record(subject: string, plan: string, abuse: AbuseRule | undefined, nowMs: number): void {
    const minuteMs = nowMs - (nowMs % 60_000);
    if (minuteMs !== this.#minuteMs) this.#roll(minuteMs);
    const entry = this.#current.get(subject);
    if (entry !== undefined) {
      entry.count++;
      return;
    }
    if (this.#current.size >= this.maxSubjects) {
      this.dropped++;
      return;
    }
    this.#current.set(subject, { count: 1, plan, abuse });
  }

  /** Every count since the last drain (and forgets them): what the flusher adds to the fleet's and the database's. */
  drain(): TalliedDenials[] {
    const drained = this.#closed;
    this.#closed = [];
    if (this.#current.size > 0) {
      for (const [subject, entry] of this.#current) drained.push({ subject, minuteMs: this.#minuteMs, ...entry });
      this.#current = new Map();
    }
    return drained;
  }

  #roll(minuteMs: number): void {
    for (const [subject, entry] of this.#current) this.#closed.push({ subject, minuteMs: this.#minuteMs, ...entry });
    if (this.#current.size > 0) this.#current = new Map();
    this.#minuteMs = minuteMs;
  }
}
