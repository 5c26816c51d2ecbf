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
 * The key for `kid` and `alg` among `keys`: its type must fit the algorithm,
 * and a key pinned to an algorithm (JWK `alg`) serves only that one. A token
 * with a `kid` gets the first key with that `kid`; a token without one gets
 * the only key that fits, and none when several do (ambiguous).
 */
export function selectKey(keys: readonly VerificationKey[], kid: string | undefined, alg: JwtAlgorithm): KeyObject | undefined {
  let chosen: VerificationKey | undefined;
  for (const key of keys) {
    if (kid !== undefined && key.kid !== kid) continue;
    if (key.alg !== undefined && key.alg !== alg) continue;
    if (!algorithmFitsKey(alg, key.shape)) continue;
    if (kid !== undefined) return key.key;
    if (chosen !== undefined) return undefined;
    chosen = key;
  }
  return chosen?.key;
}
