/**
 * Rate windows. Every window is calendar-aligned in UTC (see calendar.ts):
 * an hour resets at the top of the hour, a day at 00:00 UTC, a month on the
 * 1st at 00:00 UTC.
 */
export const WINDOW_NAMES = ['second', 'minute', 'hour', 'day', 'month'] as const;

/** The name of a calendar window, shortest first in WINDOW_NAMES. */
export type WindowName = (typeof WINDOW_NAMES)[number];

/** Rank of a window by length: 0 for second … 4 for month. */
export function windowRank(name: WindowName): number {
  return WINDOW_NAMES.indexOf(name);
}

/** `hour` → `Hour`, for headers such as `X-RateLimit-Limit-Hour`. */
export function windowTitle(name: WindowName): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

export function isWindowName(value: string): value is WindowName {
  return (WINDOW_NAMES as readonly string[]).includes(value);
}
