import { z } from 'zod';
import { JWT_ALGORITHMS, algorithmFitsKey, describeKeyShape } from '../core/jwt-algorithms.js';
import { parseJwkPublicKey, parsePemPublicKey, type PublicKeyParse } from '../core/public-key.js';

/**
 * The `auth.jwt` section of gateway.yaml and the `routes[].scopes` field:
 * which token issuers are trusted, with which algorithms and keys, and how
 * claims become an identity. Part of the one schema in schema.ts (split out
 * only to keep that file small); docs/configuration.md documents every field.
 */

const MAX_TIMEOUT_MS = 600_000;
const durationMs = (defaultMs: number) => z.int().min(1).max(MAX_TIMEOUT_MS).default(defaultMs);

/** A claim name: a top-level member of the token's payload (`sub`, `https://example.com/plan`). */
const claimName = z.string().min(1).max(256);

/** An OAuth scope token (RFC 6749 §3.3): printable ASCII except space, `"` and `\`. */
export const scopeSchema = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/, {
  error: 'expected a scope: 1–128 printable characters, no space, quote or backslash',
});

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

const jwksUrl = z.url({ protocol: /^https?$/, error: 'expected an https:// URL' }).refine(
  (value) => {
    if (!URL.canParse(value)) return true;
    const url = new URL(value);
    return url.protocol === 'https:' || LOOPBACK_HOSTS.has(url.hostname);
  },
  // Keys fetched over plain HTTP can be swapped by anyone on the path.
  { error: 'expected an https:// URL (http:// only for localhost)' },
);

/** Why an algorithm that quotagate never accepts is refused; undefined for any other value (the usual wording). */
function refusedAlgorithm(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined;
  if (input.toLowerCase() === 'none') return '"none" is never accepted: tokens must be signed';
  if (/^HS\d+$/i.test(input)) return `"${input}" is symmetric (a shared secret), which is not supported; use RS, PS, ES or EdDSA`;
  return undefined;
}

const staticKeySchema = z
  .strictObject({
    /** Matched against the token's `kid` header; default: the JWK's `kid`. A key without one serves tokens whatever their `kid`. */
    kid: z.string().min(1).max(256).optional(),
    /** A PEM public key (`BEGIN PUBLIC KEY`) or X.509 certificate. */
    pem: z.string().optional(),
    /** A public JWK (RSA, EC or OKP). */
    jwk: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((key, ctx) => {
    if ((key.pem === undefined) === (key.jwk === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'set exactly one of pem, jwk' });
      return;
    }
    const parsed = parseStaticKey(key);
    if (parsed !== undefined && !parsed.ok) {
      ctx.addIssue({ code: 'custom', path: [key.pem !== undefined ? 'pem' : 'jwk'], message: parsed.problem });
    }
  });

export type StaticKeyConfig = z.output<typeof staticKeySchema>;

/** A static key's `kid`: the entry's own, else its JWK's. */
export function staticKeyId(key: StaticKeyConfig): string | undefined {
  if (key.kid !== undefined) return key.kid;
  const fromJwk = key.jwk?.kid;
  return typeof fromJwk === 'string' ? fromJwk : undefined;
}

/** The key a static entry holds; undefined when it holds neither a PEM nor a JWK. */
export function parseStaticKey(key: StaticKeyConfig): PublicKeyParse | undefined {
  if (key.pem !== undefined) return parsePemPublicKey(key.pem);
  if (key.jwk !== undefined) return parseJwkPublicKey(key.jwk);
  return undefined;
}

const issuerSchema = z
  .strictObject({
    /** The exact `iss` claim of this issuer's tokens (Auth0's ends in `/`). */
    issuer: z.string().min(1).max(512),
    /** Accepted `aud` values; a token must name at least one. */
    audience: z.array(z.string().min(1).max(512)).min(1),
    /** Signing algorithms accepted from this issuer; required, asymmetric only. */
    algorithms: z.array(z.enum(JWT_ALGORITHMS, { error: (issue) => refusedAlgorithm(issue.input) })).min(1),
    /** Where the issuer publishes its JSON Web Key Set. Exclusive with `keys`. */
    jwks_url: jwksUrl.optional(),
    /** Public keys given in the file instead of a JWKS URL. */
    keys: z.array(staticKeySchema).min(1).optional(),
    subject_claim: claimName.default('sub'),
    /** Claim naming the caller's plan; a plan not under `plans:` gets `auth.jwt.default_plan`. */
    plan_claim: claimName.default('plan'),
    /** Claim holding the granted scopes: a space-separated string or a list of strings. */
    scopes_claim: claimName.default('scope'),
    /** Put before every subject of this issuer, so subjects of two issuers cannot collide. */
    subject_prefix: z.string().min(1).max(64).optional(),
    /** Oldest token accepted, in seconds since its `iat` (which it then requires); no limit when absent. */
    max_token_age_s: z.int().min(1).max(31_536_000).optional(),
    /**
     * The `typ` header a token must carry (RFC 9068 access tokens: `at+jwt`),
     * compared as RFC 8725 §3.11 says: case-insensitively, `application/` optional.
     */
    typ: z.string().regex(/^[A-Za-z0-9!#$&^_.+-]{1,64}(\/[A-Za-z0-9!#$&^_.+-]{1,64})?$/, { error: 'expected a media type such as "at+jwt"' }).optional(),
    /** Leeway for `exp`, `nbf` and `iat` against the gateway's clock. */
    clock_tolerance_ms: z.int().min(0).max(300_000).default(30_000),
    /** Least time between two fetches of the JWKS, whatever triggers them (an unknown `kid`, staleness, a failure). */
    jwks_cooldown_ms: durationMs(30_000),
    /** A fetch of the JWKS, connect to last byte. */
    jwks_timeout_ms: durationMs(5_000),
    /** Age after which the JWKS is refetched in the background; the old keys serve meanwhile and through outages. */
    jwks_refresh_ms: durationMs(600_000),
    /**
     * Age after which a fetched key set is no longer trusted, in ms: through an
     * outage of the JWKS endpoint the keys serve this long after their last
     * successful fetch, then tokens get 503 jwks_unavailable (a revoked
     * signing key must not stay valid forever). 1 minute to 30 days.
     */
    jwks_max_stale_ms: z.int().min(60_000).max(30 * 86_400_000).default(86_400_000),
  })
  .superRefine((issuer, ctx) => {
    if ((issuer.jwks_url === undefined) === (issuer.keys === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'set exactly one of jwks_url, keys' });
    }
    if (issuer.jwks_max_stale_ms <= issuer.jwks_refresh_ms) {
      ctx.addIssue({
        code: 'custom',
        path: ['jwks_max_stale_ms'],
        message: `must be greater than jwks_refresh_ms (${issuer.jwks_refresh_ms}), or the keys would expire before they are refreshed`,
      });
    }
    const seenKids = new Set<string>();
    issuer.keys?.forEach((key, index) => {
      const kid = staticKeyId(key);
      if (kid !== undefined) {
        if (seenKids.has(kid)) {
          ctx.addIssue({ code: 'custom', path: ['keys', index, 'kid'], message: `duplicate kid "${kid}"` });
        }
        seenKids.add(kid);
      }
      const parsed = parseStaticKey(key);
      if (parsed?.ok !== true) return;
      const shape = parsed.value.shape;
      if (!issuer.algorithms.some((algorithm) => algorithmFitsKey(algorithm, shape))) {
        ctx.addIssue({
          code: 'custom',
          path: ['keys', index],
          message: `an ${describeKeyShape(shape)} key fits none of the algorithms ${issuer.algorithms.join(', ')}`,
        });
      }
    });
  });

export type JwtIssuerConfig = z.output<typeof issuerSchema>;

const JWT_DEFAULTS = {
  default_plan: 'free',
  max_token_bytes: 8_192,
  token_cache: { max_entries: 10_000, ttl_ms: 30_000 },
} as const;

export const jwtSchema = z.strictObject({
  issuers: z.array(issuerSchema).default([]),
  /** The plan of a token whose plan claim is missing or names no configured plan. */
  default_plan: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, {
    error: 'expected a name of lowercase letters, digits, "-" and "_" (at most 64)',
  }).default(JWT_DEFAULTS.default_plan),
  /** Longest bearer token accepted; a longer one is refused before it is parsed. */
  max_token_bytes: z.int().min(256).max(65_536).default(JWT_DEFAULTS.max_token_bytes),
  /** Verified tokens, kept by hash so a hot token is not re-verified on every request; never past `exp`. */
  token_cache: z
    .strictObject({
      /** 0 turns the cache off. */
      max_entries: z.int().min(0).max(10_000_000).default(JWT_DEFAULTS.token_cache.max_entries),
      ttl_ms: durationMs(JWT_DEFAULTS.token_cache.ttl_ms),
    })
    .default({ ...JWT_DEFAULTS.token_cache }),
});

export type JwtConfig = z.output<typeof jwtSchema>;

/** `auth.jwt` when the file leaves it out: no issuers, every other field at its default. */
export function defaultJwtConfig(): JwtConfig {
  return { issuers: [], ...JWT_DEFAULTS, token_cache: { ...JWT_DEFAULTS.token_cache } };
}

/** What the cross-field JWT rules need from the whole config. */
interface JwtReferences {
  readonly auth: { readonly jwt: JwtConfig };
  readonly routes: ReadonlyArray<{ readonly name: string; readonly auth: string; readonly scopes?: readonly string[] | undefined }>;
  readonly plans: Readonly<Record<string, { readonly limits: Readonly<Record<string, number | undefined>> }>>;
}

/**
 * Rules that span `auth.jwt`, `routes` and `plans`: a token route needs an
 * issuer; route scopes need a credential (a token's or an API key's scopes); issuers are unique; the default plan is
 * defined and limits something (an unknown plan claim never lands on an
 * unlimited plan).
 */
export function checkJwtReferences(config: JwtReferences, ctx: z.RefinementCtx): void {
  const jwt = config.auth.jwt;
  config.routes.forEach((route, index) => {
    if ((route.auth === 'jwt' || route.auth === 'any') && jwt.issuers.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['routes', index, 'auth'],
        message: `route "${route.name}" uses auth: ${route.auth}, and auth.jwt.issuers is empty`,
      });
    }
    if (route.scopes !== undefined && route.auth === 'none') {
      ctx.addIssue({ code: 'custom', path: ['routes', index, 'scopes'], message: 'scopes need a credential (auth: api_key, jwt or any), not auth: none' });
    }
  });
  const seenIssuers = new Set<string>();
  jwt.issuers.forEach((issuer, index) => {
    if (seenIssuers.has(issuer.issuer)) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'jwt', 'issuers', index, 'issuer'], message: `duplicate issuer "${issuer.issuer}"` });
    }
    seenIssuers.add(issuer.issuer);
  });
  if (jwt.issuers.length === 0) return;
  const plan = config.plans[jwt.default_plan];
  if (plan === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['auth', 'jwt', 'default_plan'],
      message: `plan "${jwt.default_plan}" is not defined (tokens without a configured plan get it)`,
    });
  } else if (Object.values(plan.limits).every((limit) => limit === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: ['auth', 'jwt', 'default_plan'],
      message: `plan "${jwt.default_plan}" has no limits; the default plan must limit something`,
    });
  }
}
