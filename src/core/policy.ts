import type { WindowName } from './windows.js';

/**
 * One limit a request is checked and charged against.
 *
 * - a **window** limits all traffic of a subject per calendar period (`hour`);
 * - a **quota** limits one metered metric per calendar period
 *   (`search.month`), charged only by routes that name the metric.
 *
 * Both are calendar-aligned in UTC and counted in cost units.
 */
export interface Policy {
  /** Name in headers and `violated-policies`: the window (`hour`) or `<metric>.<window>`. */
  readonly name: string;
  readonly kind: 'window' | 'quota';
  /** The calendar period the limit applies to. */
  readonly window: WindowName;
  /** Units admitted per period; at least 1. */
  readonly limit: number;
  /**
   * Identifies the counter within a subject: `w:hour`, `q:search:month`.
   * Stable across config reloads, so counters survive them.
   */
  readonly counterId: string;
}

export function windowPolicy(window: WindowName, limit: number): Policy {
  return { name: window, kind: 'window', window, limit, counterId: `w:${window}` };
}

export function quotaPolicy(metric: string, window: WindowName, limit: number): Policy {
  return { name: `${metric}.${window}`, kind: 'quota', window, limit, counterId: `q:${metric}:${window}` };
}
