import type { WindowName } from './windows.js';

/**
 * The bounds of one calendar period, in epoch milliseconds, end exclusive.
 * The `lifetime` period starts at 0 and ends at +Infinity.
 */
export interface Period {
  readonly startMs: number;
  readonly endMs: number;
}

/** The one period of the `lifetime` window. */
const LIFETIME: Period = Object.freeze({ startMs: 0, endMs: Number.POSITIVE_INFINITY });

const FIXED_LENGTH_MS = {
  second: 1_000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
} as const;

/**
 * The UTC calendar period of `window` that contains `nowMs`.
 *
 * Second, minute, hour and day periods have a fixed length in UTC (leap
 * seconds are not represented in epoch time). A month runs from the 1st at
 * 00:00 UTC to the 1st of the next month, so it lasts 28, 29, 30 or 31 days.
 * lua/consume.lua computes the same bounds from Redis TIME; the two are tested
 * against each other. `lifetime` has one period, from the epoch, never ending.
 */
export function periodOf(window: WindowName, nowMs: number): Period {
  if (window === 'lifetime') return LIFETIME;
  if (window === 'month') {
    const date = new Date(nowMs);
    const year = date.getUTCFullYear();
    const month = date.getUTCMonth();
    return { startMs: Date.UTC(year, month, 1), endMs: Date.UTC(year, month + 1, 1) };
  }
  const lengthMs = FIXED_LENGTH_MS[window];
  const startMs = Math.floor(nowMs / lengthMs) * lengthMs;
  return { startMs, endMs: startMs + lengthMs };
}

/**
 * Whole seconds from `nowMs` until `endMs`, rounded up, at least 1; 0 for a
 * period that never ends (lifetime): the value headers and denials read as
 * "does not reset".
 */
export function secondsUntil(endMs: number, nowMs: number): number {
  if (endMs === Number.POSITIVE_INFINITY) return 0;
  return Math.max(1, Math.ceil((endMs - nowMs) / 1000));
}

/** The length of `period` in whole seconds; 0 for the lifetime period. */
export function periodSeconds(period: Period): number {
  if (period.endMs === Number.POSITIVE_INFINITY) return 0;
  return Math.round((period.endMs - period.startMs) / 1000);
}

/**
 * periodOf with the answer kept per window while it holds: a decision asks
 * for the same few periods on every request, and they change only at a
 * boundary (once an hour for `hour`), so the common call allocates nothing
 * and a month's needs no Date. A time before the kept period (a clock moved
 * back in tests) is computed afresh too. One instance per caller (it is
 * not shared state: a limiter owns one).
 */
export class PeriodCache {
  readonly #kept = new Map<WindowName, Period>();

  of(window: WindowName, nowMs: number): Period {
    const kept = this.#kept.get(window);
    if (kept !== undefined && nowMs >= kept.startMs && nowMs < kept.endMs) return kept;
    const period = periodOf(window, nowMs);
    this.#kept.set(window, period);
    return period;
  }
}
