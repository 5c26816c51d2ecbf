import { createHmac, generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';

/** A signing key of a test issuer, with its public half as the JWKS publishes it. */
export interface TestSigner {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256' | 'EdDSA';
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The public JWK with `kid`, `alg` and `use: sig`. */
  readonly publicJwk: Record<string, unknown>;
}

/** A fresh key pair for `alg` (RSA keys are 2048 bits). */
export function newSigner(alg: TestSigner['alg'], kid: string = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`): TestSigner {
  const { publicKey, privateKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : alg === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  return { kid, alg, privateKey, publicKey, publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' } };
}

/** Standard claims at `nowMs`: issued now, valid for an hour. */
export function claimsAt(nowMs: number, claims: JWTPayload): JWTPayload {
  const now = Math.floor(nowMs / 1000);
  return { iat: now, exp: now + 3600, ...claims };
}

/**
 * A compact JWS of `payload` signed by `signer`, with `kid` and `alg` in the
 * header plus `extraHeader` (which may override them). The payload is taken
 * as is: leave `exp` out to get a token without one.
 */
export async function signToken(
  signer: TestSigner,
  payload: JWTPayload,
  extraHeader: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: signer.alg, kid: signer.kid, ...extraHeader }).sign(signer.privateKey);
}

export function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

/** `header.payload.signature` from JSON values, signed by nobody. */
export function unsignedToken(header: Record<string, unknown>, payload: JWTPayload, signature = ''): string {
  return `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}.${signature}`;
}

/** An HS256 token whose HMAC secret is `secret`: the key-confusion attack uses the issuer's public key here. */
export function hmacToken(secret: string | Buffer, header: Record<string, unknown>, payload: JWTPayload): string {
  const input = `${base64url(JSON.stringify({ alg: 'HS256', ...header }))}.${base64url(JSON.stringify(payload))}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
