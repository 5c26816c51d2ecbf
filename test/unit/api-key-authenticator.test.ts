import { describe, expect, it } from 'vitest';
import { ApiKeyAuthenticator } from '../../src/auth/api-key-authenticator.js';
import { type ApiKeyRecord, type KeyStore, KeyStoreUnavailableError } from '../../src/auth/key-store.js';
import { hashApiKey } from '../../src/core/api-key.js';
import { ManualClock } from '../support/manual-clock.js';
import { parseLimitOverrides } from '../../src/core/limit-overrides.js';
import { TEST_KEY } from '../support/test-keys.js';

const NOW = Date.UTC(2026, 5, 15);

function authenticatorWith(record: ApiKeyRecord | Error | undefined, accepted: ApiKeyRecord[] = []) {
  const store: KeyStore = {
    findByHash: (hash) => {
      expect(hash).toBe(hashApiKey(TEST_KEY));
      return record instanceof Error ? Promise.reject(record) : Promise.resolve(record);
    },
  };
  return new ApiKeyAuthenticator({ prefix: 'qg', keyStore: store, clock: new ManualClock(NOW), onKeyAccepted: (r) => accepted.push(r) });
}

const authenticate = (record: ApiKeyRecord | Error | undefined, accepted?: ApiKeyRecord[]) =>
  authenticatorWith(record, accepted).authenticate({ xApiKey: TEST_KEY, authorization: undefined });

const base: ApiKeyRecord = { id: 'k1', subject: 'acme', plan: 'pro', stored: true };

describe('ApiKeyAuthenticator with database key states', () => {
  it('accepts a live key, carries its overrides, and reports the use', async () => {
    const overrides = parseLimitOverrides({ limits: { hour: 5 } })!;
    const accepted: ApiKeyRecord[] = [];
    const result = await authenticate({ ...base, overrides, expiresAtMs: NOW + 1 }, accepted);
    expect(result).toMatchObject({ ok: true, identity: { subject: 'acme', plan: 'pro', keyId: 'k1', overrides } });
    expect(accepted.map((r) => r.id)).toEqual(['k1']);
  });

  it('refuses revoked, then expired (at the instant itself), then suspended, and reports no use', async () => {
    const accepted: ApiKeyRecord[] = [];
    expect(await authenticate({ ...base, revoked: true, expiresAtMs: NOW, suspended: true }, accepted)).toEqual({ ok: false, reason: 'revoked' });
    expect(await authenticate({ ...base, expiresAtMs: NOW, suspended: true }, accepted)).toEqual({ ok: false, reason: 'expired' });
    expect(await authenticate({ ...base, suspended: true }, accepted)).toEqual({ ok: false, reason: 'suspended' });
    expect(accepted).toEqual([]);
  });

  it('answers key_store_unavailable when the store cannot be reached, and rethrows anything else', async () => {
    expect(await authenticate(new KeyStoreUnavailableError())).toEqual({ ok: false, reason: 'key_store_unavailable' });
    await expect(authenticate(new Error('bug'))).rejects.toThrow('bug');
  });

  it('refuses an unknown key', async () => {
    expect(await authenticate(undefined)).toEqual({ ok: false, reason: 'unknown' });
  });
});
