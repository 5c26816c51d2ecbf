import type { PresentedCredentials, AuthResult } from '../../src/auth/authenticator.js';
import { createJwtAuthenticator, type JwtAuthenticator, type JwtAuthenticatorDeps } from '../../src/auth/jwt-authenticator.js';
import { parseConfigText } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import type { Clock } from '../../src/core/clock.js';

/** The issuer most JWT tests trust. */
export const ISSUER = 'https://issuer.test/';
export const AUDIENCE = 'https://api.test';

/**
 * A whole config whose `auth.jwt` has `issuers` (YAML list items, indented
 * six spaces) and `jwtExtra` (fields of `auth.jwt`, indented four), with the
 * plans `free` (the default plan) and `enterprise`.
 */
export function jwtTestConfig(issuers: string, jwtExtra = ''): GatewayConfig {
  return parseConfigText(
    `
upstreams:
  app: { url: "http://127.0.0.1:9" }
routes:
  - { name: api, path_prefix: /, upstream: app, auth: jwt }
plans:
  free: { limits: { hour: 10 } }
  enterprise: { limits: { hour: 10000 } }
  internal: {}
auth:
  jwt:
    default_plan: free
${jwtExtra}
    issuers:
${issuers}
`,
    'test.yaml',
    {},
  );
}

/** One JWKS issuer at `jwksUrl` for ISSUER / AUDIENCE, with extra issuer fields (indented eight). */
export function jwksIssuer(jwksUrl: string, extra = ''): string {
  return `      - issuer: "${ISSUER}"
        audience: ["${AUDIENCE}"]
        algorithms: [RS256, ES256, EdDSA]
        jwks_url: "${jwksUrl}"
${extra}`;
}

/** The authenticator main.ts would build for `config`. */
export function jwtAuthenticatorFor(
  config: GatewayConfig,
  clock: Clock,
  deps: Partial<JwtAuthenticatorDeps> = {},
): JwtAuthenticator {
  const authenticator = createJwtAuthenticator(config.auth.jwt, { planNames: Object.keys(config.plans), clock, ...deps });
  if (authenticator === undefined) throw new Error('the test config has no issuers');
  return authenticator;
}

/** Authenticates `Authorization: Bearer <token>`. */
export function withBearer(authenticator: { authenticate(c: PresentedCredentials): Promise<AuthResult> }, token: string): Promise<AuthResult> {
  return authenticator.authenticate({ xApiKey: undefined, authorization: `Bearer ${token}` });
}

/** The refusal reason of a result, or `ok`. */
export function outcomeOf(result: AuthResult): string {
  return result.ok ? 'ok' : result.reason;
}
