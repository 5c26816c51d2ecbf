/** A source of the current time. Injected so tests move time instead of sleeping. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to; for tests. */
export class ManualClock implements Clock {
  constructor(private currentMs: number) {}

  now(): number {
    return this.currentMs;
  }

  set(epochMs: number): void {
    this.currentMs = epochMs;
  }

  advance(ms: number): void {
    this.currentMs += ms;
  }
}
