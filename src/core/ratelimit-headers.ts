import type { CreditState } from './credits.js';
import type { PolicyState } from './decision.js';
import { CALENDAR_WINDOW_NAMES, windowRank, windowTitle } from './windows.js';

/** A response header as a name/value pair, the name in its canonical case. */
export type HeaderPair = readonly [name: string, value: string];

export type ResetFormat = 'delta-seconds' | 'epoch-seconds';

/** Which families of rate-limit headers a response carries (`headers:` in gateway.yaml). */
export interface HeaderSets {
  /** IETF `RateLimit-Policy` and `RateLimit`. */
  readonly ietf: boolean;
  /** `X-RateLimit-Limit`, `-Remaining`, `-Reset` for the most constraining policy. */
  readonly legacy: boolean;
  /** `X-RateLimit-Limit-<Window>` and `X-RateLimit-Remaining-<Window>` per rate window. */
  readonly legacyPerWindow: boolean;
}

/** `X-RateLimit-Limit-<Window>` and `X-RateLimit-Remaining-<Window>` by window, built once (not per response). */
const PER_WINDOW_NAMES: ReadonlyMap<string, readonly [limit: string, remaining: string]> = new Map(
  CALENDAR_WINDOW_NAMES.map((window) => [window, [`X-RateLimit-Limit-${windowTitle(window)}`, `X-RateLimit-Remaining-${windowTitle(window)}`]] as const),
);

/** Every family: the default, and what the headers below were first specified as. */
const ALL_HEADER_SETS: HeaderSets = Object.freeze({ ietf: true, legacy: true, legacyPerWindow: true });

/**
 * The `RateLimit-Policy` value of `policies`: `"<name>";q=<limit>;w=<period
 * seconds>` items; a lifetime quota (period 0) has no `w` (optional in the draft).
 */
function policyHeaderValue(policies: readonly PolicyState[]): string {
  return policies.map((p) => (p.periodSeconds === 0 ? `"${p.name}";q=${p.limit}` : `"${p.name}";q=${p.limit};w=${p.periodSeconds}`)).join(', ');
}

/** One `RateLimit` item: `"<name>";r=<remaining>;t=<reset seconds>`, without `t` for a lifetime quota (it never resets). */
function limitItem(p: PolicyState): string {
  return p.resetSeconds === 0 ? `"${p.name}";r=${p.remaining}` : `"${p.name}";r=${p.remaining};t=${p.resetSeconds}`;
}

/**
 * The `RateLimit-Policy` value of one list of policies (one plan's, for
 * one route), kept while it stays true: it changes only when a period's
 * length does (a month's, when the month turns) or a limit does (or a
 * caller passes another list's states). Checking
 * that costs one comparison per policy; building it, a string per policy.
 * One instance per policy list (see rateLimitHeaders' `policyValues`).
 */
export class PolicyHeaderValues {
  #names: string[] = [];
  #limits: number[] = [];
  #periods: number[] = [];
  #value: string | undefined;

  valueFor(policies: readonly PolicyState[]): string {
    if (this.#value !== undefined && this.#matches(policies)) return this.#value;
    this.#names = policies.map((policy) => policy.name);
    this.#limits = policies.map((policy) => policy.limit);
    this.#periods = policies.map((policy) => policy.periodSeconds);
    this.#value = policyHeaderValue(policies);
    return this.#value;
  }

  #matches(policies: readonly PolicyState[]): boolean {
    if (policies.length !== this.#limits.length) return false;
    for (let i = 0; i < policies.length; i++) {
      const policy = policies[i]!;
      if (policy.limit !== this.#limits[i] || policy.periodSeconds !== this.#periods[i] || policy.name !== this.#names[i]) return false;
    }
    return true;
  }
}

/**
 * The policy that constrains the caller most: fewest units remaining; ties
 * go to the longer period (its reset is the one the caller must wait for).
 */
export function mostConstraining(policies: readonly PolicyState[]): PolicyState | undefined {
  let chosen: PolicyState | undefined;
  for (const window of policies) {
    if (
      chosen === undefined ||
      window.remaining < chosen.remaining ||
      (window.remaining === chosen.remaining && windowRank(window.window) > windowRank(chosen.window))
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
 *   one item per policy (windows by their name, quotas as `<metric>.<window>`), serialized as RFC 9651 Structured
 *   Fields (no spaces inside an item's parameters, `, ` between items). `q` and
 *   `r` are in the route's cost units; `w` is the current period's length in
 *   seconds (a month's varies) and `t` the seconds until it resets; a
 *   lifetime quota has neither (it never resets).
 * - legacy `X-RateLimit-Limit`, `-Remaining`, `-Reset` for the most
 *   constraining policy; `-Reset` in seconds until reset or, with
 *   `epoch-seconds`, the reset's Unix time;
 * - per rate window (not per quota) `X-RateLimit-Limit-<Window>` and
 *   `X-RateLimit-Remaining-<Window>`.
 *
 * Only the families `sets` turns on are written (all by default). Empty when
 * no policy applies. `nowMs` is only read for `epoch-seconds`. `policyValues`,
 * given for a fixed list of policies, keeps the `RateLimit-Policy` value
 * between calls. With `credits` (a plan whose credits cover one of the
 * policies), `RateLimit` ends with a `"credits";r=<balance>` item: the
 * credit units left (no `t`: credits do not reset; no `RateLimit-Policy`
 * item, they have no quota).
 */
export function rateLimitHeaders(
  policies: readonly PolicyState[],
  resetFormat: ResetFormat,
  nowMs: number,
  sets: HeaderSets = ALL_HEADER_SETS,
  policyValues?: PolicyHeaderValues,
  credits?: CreditState,
): HeaderPair[] {
  if (policies.length === 0) return [];
  const headers: HeaderPair[] = [];
  if (sets.ietf) {
    headers.push(['RateLimit-Policy', policyValues?.valueFor(policies) ?? policyHeaderValue(policies)]);
    const items = policies.map(limitItem).join(', ');
    headers.push(['RateLimit', credits === undefined ? items : `${items}, "credits";r=${credits.balance}`]);
  }
  if (sets.legacy) {
    const constraining = mostConstraining(policies)!;
    headers.push(['X-RateLimit-Limit', String(constraining.limit)]);
    headers.push(['X-RateLimit-Remaining', String(constraining.remaining)]);
    // A lifetime quota never resets: no X-RateLimit-Reset.
    if (constraining.resetSeconds !== 0) {
      headers.push([
        'X-RateLimit-Reset',
        String(resetFormat === 'epoch-seconds' ? Math.floor(nowMs / 1000) + constraining.resetSeconds : constraining.resetSeconds),
      ]);
    }
  }
  if (!sets.legacyPerWindow) return headers;
  for (const policy of policies) {
    if (policy.kind !== 'window') continue;
    const names = PER_WINDOW_NAMES.get(policy.window);
    const title = names === undefined ? windowTitle(policy.window) : '';
    headers.push([names?.[0] ?? `X-RateLimit-Limit-${title}`, String(policy.limit)]);
    headers.push([names?.[1] ?? `X-RateLimit-Remaining-${title}`, String(policy.remaining)]);
  }
  return headers;
}
