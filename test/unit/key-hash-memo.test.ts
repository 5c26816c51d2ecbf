import { describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/core/api-key.js';
import { KeyHashMemo } from '../../src/auth/key-hash-memo.js';

describe('KeyHashMemo', () => {
  it('gives the SHA-256 of a well-formed key, the same on every call', () => {
    const memo = new KeyHashMemo('qg');
    const key = generateApiKey('qg');
    expect(memo.hashOf(key)).toBe(hashApiKey(key));
    expect(memo.hashOf(key)).toBe(hashApiKey(key));
  });

  it('refuses a key with a bad checksum or another prefix, and never remembers it', () => {
    const memo = new KeyHashMemo('qg');
    const key = generateApiKey('qg');
    const mistyped = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
    expect(memo.hashOf(mistyped)).toBeUndefined();
    expect(memo.hashOf(mistyped)).toBeUndefined();
    expect(memo.hashOf(generateApiKey('other'))).toBeUndefined();
  });

  it('stays within its bound and still answers for a key it forgot', () => {
    const memo = new KeyHashMemo('qg', 2);
    const keys = [generateApiKey('qg'), generateApiKey('qg'), generateApiKey('qg')];
    for (const key of keys) memo.hashOf(key);
    expect(memo.size).toBe(2);
    expect(keys.map((key) => memo.hashOf(key))).toEqual(keys.map(hashApiKey));
    expect(memo.size).toBe(2);
  });

  it('remembers nothing that is not a key', () => {
    const memo = new KeyHashMemo('qg');
    for (let i = 0; i < 100; i++) memo.hashOf(`qg_not-a-key-${i}`);
    expect(memo.size).toBe(0);
  });
});
