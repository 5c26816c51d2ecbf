/**
 * The calendar windows: each is calendar-aligned in UTC (see calendar.ts):
 * an hour resets at the top of the hour, a day at 00:00 UTC, a month on the
 * 1st at 00:00 UTC. Plans limit all traffic by these (`limits`).
 */
export const CALENDAR_WINDOW_NAMES = ['second', 'minute', 'hour', 'day', 'month'] as const;

/**
 * Every window a policy may have: the calendar windows, then `lifetime`, a
 * single period that never ends (starting at the epoch), for quotas that
 * count things rather than rates ("3 repositories"); only metered quotas
 * may have it, and it is given back by a route's `release`.
 */
export const WINDOW_NAMES = [...CALENDAR_WINDOW_NAMES, 'lifetime'] as const;

/** The name of a calendar window, shortest first in WINDOW_NAMES. */
export type WindowName = (typeof WINDOW_NAMES)[number];

/** A window of a plan's `limits`: one that resets. */
export type CalendarWindowName = (typeof CALENDAR_WINDOW_NAMES)[number];

/** Rank of a window by length: 0 for second … 4 for month, 5 for lifetime. */
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
