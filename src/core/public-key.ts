import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { KeyShape } from './jwt-algorithms.js';

/** A public key ready to verify signatures, and the shape that decides its algorithms. */
export interface PublicKey {
  readonly key: KeyObject;
  readonly shape: KeyShape;
}

export type PublicKeyParse = { readonly ok: true; readonly value: PublicKey } | { readonly ok: false; readonly problem: string };

const PRIVATE_PEM = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
const ASYMMETRIC_KTY = new Set(['RSA', 'EC', 'OKP']);

/**
 * A PEM public key (`BEGIN PUBLIC KEY`, `BEGIN RSA PUBLIC KEY`) or X.509
 * certificate. A private key is refused rather than reduced to its public
 * half: a signing key has no business in a verifier's config.
 */
export function parsePemPublicKey(pem: string): PublicKeyParse {
  if (PRIVATE_PEM.test(pem)) return { ok: false, problem: 'expected a public key, not a private key' };
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    return { ok: false, problem: 'expected a PEM public key or certificate' };
  }
  return withShape(key);
}

/**
 * A public JWK of type RSA, EC or OKP. Symmetric (`oct`) keys and private
 * JWKs (with `d`) are refused.
 */
export function parseJwkPublicKey(jwk: Readonly<Record<string, unknown>>): PublicKeyParse {
  if (jwk.d !== undefined) return { ok: false, problem: 'expected a public JWK, not a private one (remove "d")' };
  if (typeof jwk.kty !== 'string' || !ASYMMETRIC_KTY.has(jwk.kty)) {
    return { ok: false, problem: 'expected a public JWK with kty "RSA", "EC" or "OKP"' };
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch {
    return { ok: false, problem: `expected a valid ${jwk.kty} public JWK` };
  }
  return withShape(key);
}

function withShape(key: KeyObject): PublicKeyParse {
  let jwk: JsonWebKey;
  try {
    jwk = key.export({ format: 'jwk' });
  } catch {
    return { ok: false, problem: 'expected an RSA, EC or Ed25519 public key' };
  }
  if (typeof jwk.kty !== 'string' || !ASYMMETRIC_KTY.has(jwk.kty)) {
    return { ok: false, problem: 'expected an RSA, EC or Ed25519 public key' };
  }
  return { ok: true, value: { key, shape: { kty: jwk.kty, crv: typeof jwk.crv === 'string' ? jwk.crv : undefined } } };
}
