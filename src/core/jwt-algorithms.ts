/**
 * The JWS algorithms a token may be signed with, and which public keys fit
 * each. Only asymmetric algorithms exist here: `none` and the HMAC family
 * (HS256…) cannot be configured, so a token can never be "verified" with no
 * key or with a public key used as an HMAC secret.
 */
export const JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

const ALGORITHM_SET: ReadonlySet<string> = new Set(JWT_ALGORITHMS);

export function isJwtAlgorithm(value: unknown): value is JwtAlgorithm {
  return typeof value === 'string' && ALGORITHM_SET.has(value);
}

/** The parts of a public JWK that decide which algorithms it can verify. */
export interface KeyShape {
  /** JWK key type: `RSA`, `EC`, `OKP`. */
  readonly kty: string;
  /** Curve of an `EC` or `OKP` key: `P-256`, `Ed25519`, … */
  readonly crv?: string | undefined;
}

const EC_CURVE: Partial<Record<JwtAlgorithm, string>> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };

/** Whether a key of this shape can verify signatures made with `algorithm`. */
export function algorithmFitsKey(algorithm: JwtAlgorithm, key: KeyShape): boolean {
  switch (algorithm) {
    case 'RS256':
    case 'RS384':
    case 'RS512':
    case 'PS256':
    case 'PS384':
    case 'PS512':
      return key.kty === 'RSA';
    case 'ES256':
    case 'ES384':
    case 'ES512':
      return key.kty === 'EC' && key.crv === EC_CURVE[algorithm];
    case 'EdDSA':
    case 'Ed25519':
      return key.kty === 'OKP' && key.crv === 'Ed25519';
  }
}

/** A short description of a key's type for messages: `RSA`, `EC P-256`, `OKP Ed25519`. */
export function describeKeyShape(key: KeyShape): string {
  return key.crv === undefined ? key.kty : `${key.kty} ${key.crv}`;
}
