import type { AuthResult, Authenticator, PresentedCredentials } from './authenticator.js';

/**
 * `auth: any`: an API key when the request presents one (`X-API-Key`, or a
 * bearer token with the key prefix), otherwise a bearer JWT. A request that
 * presents a key is judged on the key alone, so a bad key never falls through
 * to token verification.
 */
export class KeyOrTokenAuthenticator implements Authenticator {
  constructor(
    private readonly apiKeys: Authenticator,
    private readonly tokens: Authenticator,
  ) {}

  async authenticate(credentials: PresentedCredentials): Promise<AuthResult> {
    const byKey = await this.apiKeys.authenticate(credentials);
    if (byKey.ok || byKey.reason !== 'missing') return byKey;
    return this.tokens.authenticate(credentials);
  }
}
