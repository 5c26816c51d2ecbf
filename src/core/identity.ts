import type { LimitOverrides } from './limit-overrides.js';

/**
 * Who a request is charged to, produced by authentication.
 *
 * `subject` is the unit all limits are counted against: the subject an API key
 * is bound to, a token's subject claim, or the client IP on `auth: none`
 * routes. It is never used as a metric label or logged with a key.
 */
export interface Identity {
  readonly subject: string;
  /** The plan's name as configured under `plans:`. */
  readonly plan: string;
  /** A stable, non-secret id of the API key used (not the key, not its hash). */
  readonly keyId?: string;
  /**
   * Per-subject limits from the database that replace or add to the plan's
   * (see applyLimitOverrides); absent for file keys, tokens and anonymous callers.
   */
  readonly overrides?: LimitOverrides;
}
