/** What became of one lost charge: undone, found never charged, or given up because too many were waiting. */
export type LostChargeOutcome = 'refunded' | 'not_charged' | 'dropped';

/** A store call whose reply was lost, to undo by its request id. */
export interface LostCharge {
  readonly requestId: string;
  readonly subject: string;
}

export interface LostChargesOptions<T extends LostCharge> {
  /** Undoes one charge in the store: resolves to the counters refunded, or a negative number when it charged nothing; rejects on a store fault. */
  readonly undo: (charge: T) => Promise<number>;
  /** Charges kept waiting at most; past it the oldest is dropped (its charge stays). */
  readonly maxPending: number;
  /** Told of every final outcome, for a metric. */
  readonly onOutcome?: (outcome: LostChargeOutcome, charge: T) => void;
}

/**
 * The charges of calls whose replies were lost, waiting to be undone once
 * the store answers again. A drain undoes them oldest first, one store call
 * each, and stops at the first store fault (the rest wait for the next
 * drain). Each undo applies only if its call charged, and only once, so
 * undoing a call that never ran, or undoing twice, changes nothing.
 */
export class LostCharges<T extends LostCharge> {
  private readonly pending = new Map<string, T>();
  private readonly pendingPerSubject = new Map<string, number>();
  private draining: Promise<void> | undefined;

  constructor(private readonly options: LostChargesOptions<T>) {}

  /** Charges waiting to be undone. */
  get size(): number {
    return this.pending.size;
  }

  add(charge: T): void {
    if (this.pending.has(charge.requestId)) return;
    if (this.pending.size >= this.options.maxPending) {
      const oldest = this.pending.values().next().value as T;
      this.remove(oldest);
      this.options.onOutcome?.('dropped', oldest);
    }
    this.pending.set(charge.requestId, charge);
    this.pendingPerSubject.set(charge.subject, (this.pendingPerSubject.get(charge.subject) ?? 0) + 1);
  }

  /** Whether a charge of `subject` still waits (its ledger counts are not final). */
  hasPendingFor(subject: string): boolean {
    return this.pendingPerSubject.has(subject);
  }

  /**
   * Undoes what waits, oldest first; joins a drain already running. Resolves
   * when done or stopped by a store fault (never rejects).
   */
  drain(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    this.draining ??= this.drainAll().finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  private async drainAll(): Promise<void> {
    for (const charge of this.pending.values()) {
      let refunded: number;
      try {
        refunded = await this.options.undo(charge);
      } catch {
        return;
      }
      this.remove(charge);
      this.options.onOutcome?.(refunded < 0 ? 'not_charged' : 'refunded', charge);
    }
  }

  private remove(charge: T): void {
    if (!this.pending.delete(charge.requestId)) return;
    const left = (this.pendingPerSubject.get(charge.subject) ?? 1) - 1;
    if (left === 0) this.pendingPerSubject.delete(charge.subject);
    else this.pendingPerSubject.set(charge.subject, left);
  }
}
