import { describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey, isWellFormedApiKey } from '../../src/core/api-key.js';

describe('API key format', () => {
  it('generates prefix_random_checksum keys that validate', () => {
    const key = generateApiKey('qg');
    expect(key).toMatch(/^qg_[0-9A-Za-z]{22}_[0-9A-Za-z]{6}$/);
    expect(isWellFormedApiKey(key, 'qg')).toBe(true);
  });

  it('generates a different key each time', () => {
    const keys = new Set(Array.from({ length: 1000 }, () => generateApiKey('qg')));
    expect(keys.size).toBe(1000);
  });

  it('uses the whole base62 alphabet', () => {
    const chars = new Set(Array.from({ length: 400 }, () => generateApiKey('qg').slice(3, 25)).join(''));
    expect(chars.size).toBe(62);
  });

  it('rejects a key with one character changed (checksum)', () => {
    const key = generateApiKey('qg');
    const i = 10;
    const changed = key.slice(0, i) + (key[i] === 'a' ? 'b' : 'a') + key.slice(i + 1);
    expect(isWellFormedApiKey(changed, 'qg')).toBe(false);
  });

  it('rejects two swapped characters', () => {
    let key = generateApiKey('qg');
    while (key[5] === key[6]) key = generateApiKey('qg');
    const swapped = key.slice(0, 5) + key[6] + key[5] + key.slice(7);
    expect(isWellFormedApiKey(swapped, 'qg')).toBe(false);
  });

  it('rejects another prefix, truncation, extra characters and junk', () => {
    const key = generateApiKey('acme');
    expect(isWellFormedApiKey(key, 'acme')).toBe(true);
    expect(isWellFormedApiKey(key, 'qg')).toBe(false);
    expect(isWellFormedApiKey(key.slice(0, -1), 'acme')).toBe(false);
    expect(isWellFormedApiKey(`${key}x`, 'acme')).toBe(false);
    expect(isWellFormedApiKey('', 'qg')).toBe(false);
    expect(isWellFormedApiKey('qg_' + 'a'.repeat(10_000), 'qg')).toBe(false);
  });

  it('hashes to lowercase hex SHA-256 (known answer)', () => {
    expect(hashApiKey('qg_example')).toBe('034013862e0d389bff4c9e18b223efcefed03b2a95f45308760cff0ffcfb8941');
  });
});
