import type { WindowState } from './decision.js';
import { windowRank, windowTitle } from './windows.js';

/** A response header as a name/value pair, the name in its canonical case. */
export type HeaderPair = readonly [name: string, value: string];

export type ResetFormat = 'delta-seconds' | 'epoch-seconds';

/**
 * The window that constrains the caller most: fewest units remaining; ties
 * go to the longer window (its reset is the one the caller must wait for).
 */
export function mostConstraining(windows: readonly WindowState[]): WindowState | undefined {
  let chosen: WindowState | undefined;
  for (const window of windows) {
    if (
      chosen === undefined ||
      window.remaining < chosen.remaining ||
      (window.remaining === chosen.remaining && windowRank(window.name) > windowRank(chosen.name))
    ) {
      chosen = window;
    }
  }
  return chosen;
}

/**
 * The rate-limit headers of a limited response, allowed or denied:
 *
 * - IETF `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-11),
 *   one item per window, named by the window, serialized as RFC 9651 Structured
 *   Fields (no spaces inside an item's parameters, `, ` between items). `q` and
 *   `r` are in the route's cost units; `w` is the current period's length in
 *   seconds (a month's varies) and `t` the seconds until it resets.
 * - legacy `X-RateLimit-Limit`, `-Remaining`, `-Reset` for the most
 *   constraining window; `-Reset` in seconds until reset or, with
 *   `epoch-seconds`, the reset's Unix time;
 * - per window `X-RateLimit-Limit-<Window>` and `X-RateLimit-Remaining-<Window>`.
 *
 * Empty when no window applies. `nowMs` is only read for `epoch-seconds`.
 */
export function rateLimitHeaders(
  windows: readonly WindowState[],
  resetFormat: ResetFormat,
  nowMs: number,
): HeaderPair[] {
  const constraining = mostConstraining(windows);
  if (constraining === undefined) return [];
  const headers: HeaderPair[] = [
    ['RateLimit-Policy', windows.map((w) => `"${w.name}";q=${w.limit};w=${w.periodSeconds}`).join(', ')],
    ['RateLimit', windows.map((w) => `"${w.name}";r=${w.remaining};t=${w.resetSeconds}`).join(', ')],
    ['X-RateLimit-Limit', String(constraining.limit)],
    ['X-RateLimit-Remaining', String(constraining.remaining)],
    [
      'X-RateLimit-Reset',
      String(
        resetFormat === 'epoch-seconds'
          ? Math.floor(nowMs / 1000) + constraining.resetSeconds
          : constraining.resetSeconds,
      ),
    ],
  ];
  for (const window of windows) {
    const title = windowTitle(window.name);
    headers.push([`X-RateLimit-Limit-${title}`, String(window.limit)]);
    headers.push([`X-RateLimit-Remaining-${title}`, String(window.remaining)]);
  }
  return headers;
}
