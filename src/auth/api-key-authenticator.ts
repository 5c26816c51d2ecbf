import { hashApiKey, isWellFormedApiKey } from '../core/api-key.js';
import { type AuthResult, type Authenticator, NO_SCOPES, type PresentedCredentials } from './authenticator.js';
import { presentedApiKey } from './credentials.js';
import type { KeyStore } from './key-store.js';

export interface ApiKeyAuthenticatorOptions {
  /** The configured key prefix, e.g. `qg`. */
  readonly prefix: string;
  readonly keyStore: KeyStore;
}

/**
 * Turns the API key a request presents into an Identity. A missing key or one
 * that fails the format and checksum check is refused without any lookup; only
 * the SHA-256 of a well-formed key reaches the key store.
 */
export class ApiKeyAuthenticator implements Authenticator {
  constructor(private readonly options: ApiKeyAuthenticatorOptions) {}

  async authenticate({ xApiKey, authorization }: PresentedCredentials): Promise<AuthResult> {
    const presented = presentedApiKey(xApiKey, authorization, this.options.prefix);
    if (presented === undefined) return { ok: false, reason: 'missing' };
    if (!isWellFormedApiKey(presented.key, this.options.prefix)) return { ok: false, reason: 'malformed' };
    const record = await this.options.keyStore.findByHash(hashApiKey(presented.key));
    if (record === undefined) return { ok: false, reason: 'unknown' };
    return {
      ok: true,
      identity: { subject: record.subject, plan: record.plan, keyId: record.id },
      credentialHeader: presented.header,
      scopes: NO_SCOPES,
    };
  }
}
