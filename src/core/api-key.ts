import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * API key format: `<prefix>_<random>_<checksum>`.
 *
 * - prefix: 2–16 lowercase letters and digits, starting with a letter (default `qg`);
 * - random: 22 base62 characters drawn uniformly (≈131 bits);
 * - checksum: CRC-32 of `<prefix>_<random>` as 6 base62 characters.
 *
 * The checksum lets a malformed or mistyped key be rejected with no store or
 * database lookup. It is not a secret and adds no strength.
 */
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_LENGTH = 22;
const CHECKSUM_LENGTH = 6;
const KEY_PATTERN = /^([a-z][a-z0-9]{1,15})_([0-9A-Za-z]{22})_([0-9A-Za-z]{6})$/;
export const KEY_PREFIX_PATTERN = /^[a-z][a-z0-9]{1,15}$/;

/** Longest well-formed key; anything longer is rejected before parsing. */
const MAX_KEY_LENGTH = 16 + 1 + RANDOM_LENGTH + 1 + CHECKSUM_LENGTH;

function checksumOf(body: string): string {
  let value = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

/** A new random key with `prefix`. Uniform over base62 by rejection sampling. */
export function generateApiKey(prefix: string): string {
  if (!KEY_PREFIX_PATTERN.test(prefix)) throw new Error(`invalid key prefix "${prefix}"`);
  let random = '';
  while (random.length < RANDOM_LENGTH) {
    for (const byte of randomBytes(32)) {
      // 248 = 4 × 62: bytes at or above it would bias the alphabet.
      if (byte < 248 && random.length < RANDOM_LENGTH) random += BASE62[byte % 62];
    }
  }
  const body = `${prefix}_${random}`;
  return `${body}_${checksumOf(body)}`;
}

/**
 * Whether `candidate` is a well-formed key with `prefix` and a valid checksum.
 * Pure and cheap: no lookup happens for a key that fails this.
 */
export function isWellFormedApiKey(candidate: string, prefix: string): boolean {
  if (candidate.length > MAX_KEY_LENGTH) return false;
  const match = KEY_PATTERN.exec(candidate);
  if (match === null || match[1] !== prefix) return false;
  return checksumOf(`${match[1]}_${match[2]}`) === match[3];
}

/** Lowercase hex SHA-256 of the key: the only form in which a key is stored. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
