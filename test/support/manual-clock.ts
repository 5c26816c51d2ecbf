import type { Clock } from '../../src/core/clock.js';

/** A clock that moves only when told to: tests move time instead of sleeping. */
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
