import type { JWTPayload } from 'jose';
import type { JwtIssuerConfig } from '../config/jwt-schema.js';
import type { Identity } from '../core/identity.js';
import { hasLoneSurrogate } from '../core/unicode-text.js';

/** Longest subject claim accepted, as for API key subjects. */
const MAX_SUBJECT_LENGTH = 256;

/** How a verified token's claims become who is charged and what it may do. */
export interface ClaimsMapping {
  /** Names of the configured plans. */
  readonly plans: ReadonlySet<string>;
  /** The plan of a token whose plan claim is missing or names no configured plan. */
  readonly defaultPlan: string;
}

export type MappedClaims =
  | { readonly ok: true; readonly identity: Identity; readonly scopes: ReadonlySet<string> }
  | { readonly ok: false };

/**
 * The identity of a verified token: the subject claim (with the issuer's
 * `subject_prefix`), the plan claim when it names a configured plan and the
 * default plan otherwise (so a forged-looking `superuser` lands on a limited
 * plan, never on none), and the scopes claim. Not ok when the subject claim
 * is missing, empty, not a string, longer than MAX_SUBJECT_LENGTH or not
 * Unicode text (a lone surrogate, which has no UTF-8 form for the upstream).
 */
export function identityFromClaims(claims: JWTPayload, issuer: JwtIssuerConfig, mapping: ClaimsMapping): MappedClaims {
  const subject = claims[issuer.subject_claim];
  if (typeof subject !== 'string' || subject === '' || subject.length > MAX_SUBJECT_LENGTH || hasLoneSurrogate(subject)) return { ok: false };
  const planClaim = claims[issuer.plan_claim];
  const plan = typeof planClaim === 'string' && mapping.plans.has(planClaim) ? planClaim : mapping.defaultPlan;
  return {
    ok: true,
    identity: { subject: `${issuer.subject_prefix ?? ''}${subject}`, plan },
    scopes: scopesOf(claims[issuer.scopes_claim]),
  };
}

/**
 * Scopes from a claim value: a space-separated string (OAuth `scope`, as
 * Auth0 and Keycloak send it) or a list of strings (`scp`, as Okta and
 * Azure AD do). Anything else grants nothing.
 */
export function scopesOf(value: unknown): ReadonlySet<string> {
  if (typeof value === 'string') return new Set(value.split(/\s+/).filter((scope) => scope !== ''));
  if (Array.isArray(value)) return new Set(value.filter((scope): scope is string => typeof scope === 'string' && scope !== ''));
  return new Set();
}

/** The scopes of `required` that `granted` lacks, in `required`'s order. */
export function missingScopes(granted: ReadonlySet<string>, required: readonly string[]): string[] {
  return required.filter((scope) => !granted.has(scope));
}
