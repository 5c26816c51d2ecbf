import { parseLimitOverrides } from '../core/limit-overrides.js';
import { findApiKeyByHash, type KeyLookup } from '../db/api-keys.js';
import type { Queryable } from '../db/database.js';
import type { ReplicaState } from '../db/replica-lag.js';
import { type ApiKeyRecord, type KeyRequester, type KeyStore, KeyStoreUnavailableError } from './key-store.js';

/**
 * Which database answered a lookup, and why that one:
 * - `replica`, `fresh`: the replica knew the key;
 * - `primary`, `replica_miss`: the replica did not know it, so the primary
 *   confirmed (a key created a moment ago may not have reached the replica);
 * - `primary`, `replica_<state>`: the replica was not used (`replica_lagging`,
 *   `replica_down` (a check or a lookup on it failed), `replica_not_in_recovery`,
 *   `replica_unchecked`);
 * - `primary`, `recent_change`: a key or subject changed moments ago (an
 *   invalidation), and the replica may not have the change yet;
 * - `primary`, `no_replica`: none is configured.
 */
export type KeyLookupServed =
  | { readonly servedBy: 'replica'; readonly reason: 'fresh' }
  | { readonly servedBy: 'primary'; readonly reason: PrimaryLookupReason };

export type PrimaryLookupReason = 'replica_miss' | `replica_${Exclude<ReplicaState, 'fresh'>}` | 'recent_change' | 'no_replica';

/** A streaming replica that answers lookups while `state()` says it may. */
export interface KeyLookupReplica {
  readonly db: Queryable;
  /** `fresh`: ask the replica first; `recent_change` or another state: go to the primary. Read per lookup: no query. */
  state(): ReplicaState | 'recent_change';
  /** A lookup on the replica failed (it was then asked of the primary). */
  reportFailure(error: unknown): void;
}

export interface DatabaseKeyStoreOptions {
  /** The primary: every lookup when there is no usable replica, and every replica miss. */
  readonly db: Queryable;
  /** A replica asked first; absent: every lookup goes to `db`. */
  readonly replica?: KeyLookupReplica;
  /** Called once per answered lookup with the database that answered (for a metric). */
  readonly onServed?: (served: KeyLookupServed) => void;
  /** Plan names defined in gateway.yaml. */
  readonly plans: ReadonlySet<string>;
  /**
   * The plan of a subject whose stored plan is no longer in gateway.yaml, so
   * a removed plan never means unlimited; `auth.jwt.default_plan` when it is
   * configured. Undefined: such keys are refused as unavailable.
   */
  readonly fallbackPlan: string | undefined;
  /** Called when a stored plan is unknown, so operators hear of it. */
  readonly onUnknownPlan?: (plan: string) => void;
}

/**
 * API keys in the `api_keys` table, with their subject's plan, overrides and
 * suspension, in one query (findApiKeyByHash). Every call queries: put a
 * CachingKeyStore in front of it. Any database failure rejects with
 * KeyStoreUnavailableError, so a lookup never turns into a 500 or a pass.
 *
 * With a replica, a lookup asks it first while it is fresh; a key it does
 * not know is asked of the primary before it is called unknown (and cached
 * as such), and a replica that fails is passed over for the primary. So a
 * replica changes where keys are found, never whether they are.
 */
export class DatabaseKeyStore implements KeyStore {
  /** Each configured plan name → itself: records share the config's string instead of one decoded per row. */
  readonly #planNames: ReadonlyMap<string, string>;

  constructor(private readonly options: DatabaseKeyStoreOptions) {
    this.#planNames = new Map([...options.plans].map((name) => [name, name]));
  }

  #planName(plan: string): string {
    return this.#planNames.get(plan) ?? plan;
  }

  async findByHash(sha256Hex: string): Promise<ApiKeyRecord | undefined> {
    let found: KeyLookup | undefined;
    try {
      found = await this.#lookUp(sha256Hex);
    } catch (error) {
      throw new KeyStoreUnavailableError({ cause: error });
    }
    if (found === undefined) return undefined;
    const { key, subject } = found;
    let plan = subject.plan;
    if (!this.options.plans.has(plan)) {
      this.options.onUnknownPlan?.(plan);
      if (this.options.fallbackPlan === undefined) throw new KeyStoreUnavailableError();
      plan = this.options.fallbackPlan;
    }
    const overrides = parseLimitOverrides(subject.overrides);
    // Most keys have nothing optional: a plain literal is the smallest record (a spread allocates room for more).
    if (overrides === undefined && key.scopes.length === 0 && key.expiresAt === null && key.revokedAt === null && subject.suspendedAt === null) {
      return Object.freeze({ id: key.id, subject: subject.id, plan: this.#planName(plan), stored: true });
    }
    return Object.freeze({
      id: key.id,
      subject: subject.id,
      plan: this.#planName(plan),
      stored: true,
      ...(overrides === undefined ? {} : { overrides }),
      ...(key.scopes.length === 0 ? {} : { scopes: new Set(key.scopes) }),
      ...(key.expiresAt === null ? {} : { expiresAtMs: key.expiresAt.getTime() }),
      ...(key.revokedAt === null ? {} : { revoked: true }),
      ...(subject.suspendedAt === null ? {} : { suspended: true }),
    });
  }

  /** The key from the replica when it is fresh and knows it, else from the primary. */
  async #lookUp(sha256Hex: string): Promise<KeyLookup | undefined> {
    const { replica } = this.options;
    if (replica === undefined) return this.#fromPrimary(sha256Hex, 'no_replica');
    const state = replica.state();
    if (state === 'recent_change') return this.#fromPrimary(sha256Hex, state);
    if (state !== 'fresh') return this.#fromPrimary(sha256Hex, `replica_${state}`);
    let found: KeyLookup | undefined;
    try {
      found = await findApiKeyByHash(replica.db, sha256Hex);
    } catch (error) {
      replica.reportFailure(error);
      return this.#fromPrimary(sha256Hex, 'replica_down');
    }
    if (found === undefined) return this.#fromPrimary(sha256Hex, 'replica_miss');
    this.options.onServed?.({ servedBy: 'replica', reason: 'fresh' });
    return found;
  }

  async #fromPrimary(sha256Hex: string, reason: PrimaryLookupReason): Promise<KeyLookup | undefined> {
    const found = await findApiKeyByHash(this.options.db, sha256Hex);
    this.options.onServed?.({ servedBy: 'primary', reason });
    return found;
  }
}

/** Asks each store in turn; the first that knows the hash answers. For gateway.yaml keys before the database. */
export class CompositeKeyStore implements KeyStore {
  constructor(private readonly stores: readonly KeyStore[]) {}

  async findByHash(sha256Hex: string, requester?: KeyRequester): Promise<ApiKeyRecord | undefined> {
    for (const store of this.stores) {
      const record = await store.findByHash(sha256Hex, requester);
      if (record !== undefined) return record;
    }
    return undefined;
  }
}
