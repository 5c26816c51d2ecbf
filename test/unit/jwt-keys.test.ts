import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseKeySet } from '../../src/auth/jwks-cache.js';
import { type VerificationKey, selectKey } from '../../src/auth/key-source.js';
import { parseJwkPublicKey, parsePemPublicKey } from '../../src/core/public-key.js';

/** Which keys a token may be verified with: key parsing, JWKS entries and selection by kid and alg. */

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const jwkOf = (key: { export(o: { format: 'jwk' }): object }, extra: Record<string, unknown> = {}) => ({
  ...(key.export({ format: 'jwk' }) as Record<string, unknown>),
  ...extra,
});

function key(kid: string | undefined, kty: string, crv?: string, alg?: string): VerificationKey {
  const source = kty === 'RSA' ? rsa : crv === 'Ed25519' ? ed : ec;
  return { kid, alg, shape: { kty, crv }, key: source.publicKey };
}

describe('public keys from config', () => {
  it('reads PEM public keys and reports their shape', () => {
    const pem = ec.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const parsed = parsePemPublicKey(pem);
    expect(parsed.ok && parsed.value.shape).toEqual({ kty: 'EC', crv: 'P-256' });
  });

  it('refuses a private PEM instead of deriving its public half', () => {
    const pem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(parsePemPublicKey(pem)).toEqual({ ok: false, problem: 'expected a public key, not a private key' });
  });

  it('refuses a private JWK, a symmetric JWK and a broken one', () => {
    expect(parseJwkPublicKey(jwkOf(ed.privateKey))).toEqual({ ok: false, problem: 'expected a public JWK, not a private one (remove "d")' });
    expect(parseJwkPublicKey({ kty: 'oct', k: 'c2VjcmV0' })).toEqual({ ok: false, problem: 'expected a public JWK with kty "RSA", "EC" or "OKP"' });
    expect(parseJwkPublicKey({ kty: 'EC', crv: 'P-256', x: 'AA' })).toEqual({ ok: false, problem: 'expected a valid EC public JWK' });
  });
});

describe('JWKS documents', () => {
  it('keeps public signature keys with their kid and alg, and skips the rest', () => {
    const keys = parseKeySet({
      keys: [
        jwkOf(rsa.publicKey, { kid: 'r1', alg: 'RS256', use: 'sig' }),
        jwkOf(ec.publicKey, { kid: 'enc', use: 'enc' }),
        jwkOf(ed.privateKey, { kid: 'private' }),
        { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' },
        'not a key',
        jwkOf(ed.publicKey, { kid: 'e1' }),
      ],
    });
    expect(keys.map((k) => [k.kid, k.alg, k.shape])).toEqual([
      ['r1', 'RS256', { kty: 'RSA', crv: undefined }],
      ['e1', undefined, { kty: 'OKP', crv: 'Ed25519' }],
    ]);
  });

  it.each([null, [], {}, { keys: 'x' }])('refuses a document without a keys list (%j)', (document) => {
    expect(() => parseKeySet(document)).toThrow('the JWKS document has no "keys" list');
  });
});

describe('key selection', () => {
  const keys = [key('r1', 'RSA'), key('r2', 'RSA', undefined, 'PS256'), key('e1', 'EC', 'P-256'), key('d1', 'OKP', 'Ed25519')];

  it('picks the key named by kid when its type fits the algorithm', () => {
    expect(selectKey(keys, 'r1', 'RS256')).toBe(rsa.publicKey);
    expect(selectKey(keys, 'e1', 'ES256')).toBe(ec.publicKey);
    expect(selectKey(keys, 'd1', 'EdDSA')).toBe(ed.publicKey);
  });

  it('refuses a kid whose key does not fit the algorithm, or is pinned to another', () => {
    expect(selectKey(keys, 'e1', 'RS256')).toBeUndefined();
    expect(selectKey(keys, 'e1', 'ES384')).toBeUndefined();
    expect(selectKey(keys, 'r2', 'RS256')).toBeUndefined();
    expect(selectKey(keys, 'r2', 'PS256')).toBe(rsa.publicKey);
  });

  it('gives a token without kid the one key that fits, and none when several do', () => {
    expect(selectKey(keys, undefined, 'ES256')).toBe(ec.publicKey);
    expect(selectKey(keys, undefined, 'RS256')).toBe(rsa.publicKey);
    expect(selectKey([key('a', 'RSA'), key('b', 'RSA')], undefined, 'RS256')).toBeUndefined();
  });

  it('lets a key without kid serve a token whose kid no key carries', () => {
    const withAnonymous = [key('r1', 'RSA'), key(undefined, 'EC', 'P-256')];
    expect(selectKey(withAnonymous, 'unknown', 'ES256')).toBe(ec.publicKey);
    expect(selectKey(withAnonymous, 'unknown', 'RS256')).toBeUndefined();
  });
});
