import { type Clock, systemClock } from '../core/clock.js';
import type { Identity } from '../core/identity.js';
import { type AuthResult, type Authenticator, NO_SCOPES, type PresentedCredentials } from './authenticator.js';
import { presentedApiKey } from './credentials.js';
import { KeyHashMemo } from './key-hash-memo.js';
import { type ApiKeyRecord, KeyLookupThrottledError, type KeyStore, KeyStoreUnavailableError } from './key-store.js';

export interface ApiKeyAuthenticatorOptions {
  /** The configured key prefix, e.g. `qg`. */
  readonly prefix: string;
  readonly keyStore: KeyStore;
  /** Judges key expiry; the system clock when omitted. */
  readonly clock?: Clock;
  /** Called for each accepted key (to batch its last-used time). */
  readonly onKeyAccepted?: (record: ApiKeyRecord) => void;
}

/**
 * Turns the API key a request presents into an Identity. A missing key or one
 * that fails the format and checksum check is refused without any lookup; only
 * the SHA-256 of a well-formed key reaches the key store. A revoked key, one
 * at or past its expiry, and one whose subject is suspended are refused, in
 * that order; a key store that cannot answer is `key_store_unavailable`,
 * and a client address past its budget of unknown-key lookups `throttled`.
 */
export class ApiKeyAuthenticator implements Authenticator {
  readonly #clock: Clock;
  readonly #hashes: KeyHashMemo;
  /**
   * The accepted result of each record the key store hands out, one map per
   * header that can carry the key (records are cached there, so a hot key
   * allocates no result per request). One entry and one result per cached
   * key: their identity is built with them, not kept apart.
   */
  readonly #acceptedViaApiKeyHeader = new WeakMap<ApiKeyRecord, AuthResult>();
  readonly #acceptedViaAuthorization = new WeakMap<ApiKeyRecord, AuthResult>();

  constructor(private readonly options: ApiKeyAuthenticatorOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#hashes = new KeyHashMemo(options.prefix);
  }

  /** Synchronous when the key store answers from memory (a cached key); a promise while it looks the key up. */
  authenticate({ xApiKey, authorization, clientAddress }: PresentedCredentials): AuthResult | Promise<AuthResult> {
    const presented = presentedApiKey(xApiKey, authorization, this.options.prefix);
    if (presented === undefined) return MISSING;
    const hash = this.#hashes.hashOf(presented.key);
    if (hash === undefined) return MALFORMED;
    let found: ApiKeyRecord | undefined | Promise<ApiKeyRecord | undefined>;
    try {
      found = this.options.keyStore.findByHash(hash, clientAddress);
    } catch (error) {
      return lookupFailure(error);
    }
    if (!(found instanceof Promise)) return this.#resultOf(found, presented.header);
    return found.then(
      (record) => this.#resultOf(record, presented.header),
      (error: unknown) => lookupFailure(error),
    );
  }

  #resultOf(record: ApiKeyRecord | undefined, header: 'x-api-key' | 'authorization'): AuthResult {
    if (record === undefined) return { ok: false, reason: 'unknown' };
    if (record.revoked === true) return { ok: false, reason: 'revoked' };
    if (record.expiresAtMs !== undefined && this.#clock.now() >= record.expiresAtMs) return { ok: false, reason: 'expired' };
    if (record.suspended === true) return { ok: false, reason: 'suspended' };
    this.options.onKeyAccepted?.(record);
    const accepted = header === 'x-api-key' ? this.#acceptedViaApiKeyHeader : this.#acceptedViaAuthorization;
    let result = accepted.get(record);
    if (result === undefined) {
      result = Object.freeze({ ok: true, identity: identityOf(record), credentialHeader: header, scopes: record.scopes ?? NO_SCOPES });
      accepted.set(record, result);
    }
    return result;
  }
}

function identityOf(record: ApiKeyRecord): Identity {
  return record.overrides === undefined
    ? { subject: record.subject, plan: record.plan, keyId: record.id }
    : { subject: record.subject, plan: record.plan, keyId: record.id, overrides: record.overrides };
}

const MISSING: AuthResult = Object.freeze({ ok: false, reason: 'missing' });
const MALFORMED: AuthResult = Object.freeze({ ok: false, reason: 'malformed' });

/** A lookup that failed: the store's own refusals are results; anything else is a fault for the caller. */
function lookupFailure(error: unknown): AuthResult {
  if (error instanceof KeyStoreUnavailableError) return { ok: false, reason: 'key_store_unavailable' };
  if (error instanceof KeyLookupThrottledError) return { ok: false, reason: 'throttled' };
  throw error;
}
