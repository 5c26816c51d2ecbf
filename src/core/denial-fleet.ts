/** Denials to add to the fleet's count of one subject and minute. */
export interface DenialIncrement {
  readonly subject: string;
  /** Start of the minute, epoch ms. */
  readonly minuteMs: number;
  readonly count: number;
}

/**
 * The fleet's denials per subject and minute: every instance adds what it
 * counted, and learns the total after its addition, atomically (Redis
 * INCRBY), so the one addition that takes a subject's minute past a
 * threshold is seen by exactly one instance.
 */
export interface DenialFleetCounter {
  /** Adds each increment; resolves to the total after each, in order. */
  add(increments: readonly DenialIncrement[]): Promise<number[]>;
}

/** How long a minute's total is kept (ms): the minute, and one more for late additions. */
const KEEP_MS = 120_000;

/** The memory store's fleet: this instance alone, so its own totals are the fleet's. */
export class LocalDenialCounter implements DenialFleetCounter {
  readonly #totals = new Map<string, { minuteMs: number; total: number }>();

  async add(increments: readonly DenialIncrement[]): Promise<number[]> {
    const totals = increments.map((increment) => {
      const key = `${increment.minuteMs} ${increment.subject}`;
      const entry = this.#totals.get(key);
      const total = (entry?.total ?? 0) + increment.count;
      this.#totals.set(key, { minuteMs: increment.minuteMs, total });
      return total;
    });
    const newest = Math.max(...increments.map((increment) => increment.minuteMs));
    for (const [key, entry] of this.#totals) if (entry.minuteMs < newest - KEEP_MS) this.#totals.delete(key);
    return totals;
  }
}
