import type { KeyObject } from 'node:crypto';
import { algorithmFitsKey, type JwtAlgorithm, type KeyShape } from '../core/jwt-algorithms.js';

/** One verification key of an issuer. */
export interface VerificationKey {
  /** The JWK `kid`, when the key has one. */
  readonly kid: string | undefined;
  /** The JWK `alg`, when the key is pinned to one algorithm. */
  readonly alg: string | undefined;
  readonly shape: KeyShape;
  readonly key: KeyObject;
}

export type KeyLookup =
  | { readonly found: true; readonly key: KeyObject }
  /** `unknown`: no key fits; `unavailable`: no key set could be loaded yet. */
  | { readonly found: false; readonly reason: 'unknown' | 'unavailable' };

/**
 * Where an issuer's verification keys come from: the config (StaticKeySource)
 * or a remote JWKS (JwksCache). Only the token's `kid` and `alg` select a
 * key; `jku`, `x5u` and embedded `jwk` headers are never consulted.
 */
export interface KeySource {
  /** The key for a token with this `kid` (if any) signed with `alg`. Never rejects. */
  keyFor(kid: string | undefined, alg: JwtAlgorithm): Promise<KeyLookup>;
}

/**
 * The key for `kid` and `alg` among `keys`. A key fits when its type suits
 * the algorithm and it is not pinned (JWK `alg`) to another one. A token
 * with a `kid` gets the fitting key with that `kid`; failing that (or with no
 * `kid`), the one fitting key that carries no `kid` of its own (or, for a
 * token without `kid`, the one fitting key at all) — none when several fit,
 * rather than guess.
 */
export function selectKey(keys: readonly VerificationKey[], kid: string | undefined, alg: JwtAlgorithm): KeyObject | undefined {
  const fits = (key: VerificationKey) => (key.alg === undefined || key.alg === alg) && algorithmFitsKey(alg, key.shape);
  if (kid !== undefined) {
    const named = keys.find((key) => key.kid === kid && fits(key));
    if (named !== undefined) return named.key;
  }
  const candidates = keys.filter((key) => fits(key) && (kid === undefined || key.kid === undefined));
  return candidates.length === 1 ? candidates[0]!.key : undefined;
}
