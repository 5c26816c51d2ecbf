import { parseLimitOverrides } from '../core/limit-overrides.js';
import { findApiKeyByHash } from '../db/api-keys.js';
import type { Queryable } from '../db/database.js';
import { type ApiKeyRecord, type KeyRequester, type KeyStore, KeyStoreUnavailableError } from './key-store.js';

export interface DatabaseKeyStoreOptions {
  /** Where key lookups go: the replica when one is configured, else the primary. */
  readonly db: Queryable;
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
 */
export class DatabaseKeyStore implements KeyStore {
  constructor(private readonly options: DatabaseKeyStoreOptions) {}

  async findByHash(sha256Hex: string): Promise<ApiKeyRecord | undefined> {
    let found: Awaited<ReturnType<typeof findApiKeyByHash>>;
    try {
      found = await findApiKeyByHash(this.options.db, sha256Hex);
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
    return Object.freeze({
      id: key.id,
      subject: subject.id,
      plan,
      stored: true,
      ...(overrides === undefined ? {} : { overrides }),
      ...(key.expiresAt === null ? {} : { expiresAtMs: key.expiresAt.getTime() }),
      ...(key.revokedAt === null ? {} : { revoked: true }),
      ...(subject.suspendedAt === null ? {} : { suspended: true }),
    });
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
