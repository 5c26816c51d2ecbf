/**
 * Subjects blocked by an abuse rule (`action: block`): refused with 403
 * `subject_blocked` at every instance until their block ends, or an
 * operator lifts it (`DELETE /admin/subjects/{id}/block`).
 */

/** The blocks this instance knows of: subject → the epoch ms the block ends. Read by the limit step. */
export class BlockedSubjects {
  readonly #untilMs = new Map<string, number>();

  /** How many subjects are listed: the limit step looks a subject up only when this is not 0. */
  get size(): number {
    return this.#untilMs.size;
  }

  /** The end of the subject's block (epoch ms) if it is blocked at `nowMs`; an ended block is forgotten. */
  blockedUntil(subject: string, nowMs: number): number | undefined {
    const untilMs = this.#untilMs.get(subject);
    if (untilMs === undefined) return undefined;
    if (untilMs > nowMs) return untilMs;
    this.#untilMs.delete(subject);
    return undefined;
  }

  /** Records a block (a later end replaces an earlier one, whichever arrives first). */
  set(subject: string, untilMs: number): void {
    this.#untilMs.set(subject, untilMs);
  }

  delete(subject: string): boolean {
    return this.#untilMs.delete(subject);
  }

  /** Every listed block (for a reload of the store's list). */
  clear(): void {
    this.#untilMs.clear();
  }
}

/**
 * Where blocks are kept and shared: on Redis a key per subject with a TTL,
 * an index of them, and a pub/sub broadcast to every instance; on the memory
 * store, this instance's BlockedSubjects alone.
 */
export interface SubjectBlockStore {
  /** Blocks `subject` until `untilMs` (epoch ms) everywhere. */
  block(subject: string, untilMs: number): Promise<void>;
  /** Lifts the subject's block everywhere; resolves to whether it was blocked. */
  unblock(subject: string): Promise<boolean>;
}

/** The memory store's blocks: one instance, so its own list is the fleet's. */
export class LocalSubjectBlocks implements SubjectBlockStore {
  constructor(
    private readonly blocked: BlockedSubjects,
    private readonly nowMs: () => number,
  ) {}

  async block(subject: string, untilMs: number): Promise<void> {
    this.blocked.set(subject, untilMs);
  }

  async unblock(subject: string): Promise<boolean> {
    const was = this.blocked.blockedUntil(subject, this.nowMs()) !== undefined;
    this.blocked.delete(subject);
    return was;
  }
}
