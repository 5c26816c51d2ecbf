import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeApiKey } from '../../src/db/api-keys.js';
import { setSubjectOverrides } from '../../src/db/subjects.js';
import { storeTestKey } from '../support/database-keys.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, testConfig, type TestGateway } from '../support/test-gateway.js';

/** The embedded default: PGlite in memory, the memory store, invalidation inside the one instance. */
describe('API keys from the embedded database', () => {
  let upstream: RecordingUpstream;
  let gw: TestGateway;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    upstream.configure({ reply: { body: 'ok' } });
    gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: '  - { name: api, path_prefix: /, upstream: app }',
        plans: `  small: { limits: { minute: 100 } }\n  anonymous: { limits: { minute: 2 } }`,
      }),
      { database: true },
    );
  }, 60_000);
  afterAll(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
  });

  const get = async (key: string) => {
    const res = await request(`${gw.proxyUrl}/x`, { headers: { 'x-api-key': key } });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : text };
  };

  it('refuses a key once it is revoked and announced, with no wait', async () => {
    const db = gw.gateway.databases!.primary;
    const stored = await storeTestKey(db, { subject: 'embedded' });
    expect((await get(stored.key)).status).toBe(200);
    await db.transaction((tx) => revokeApiKey(tx, stored.id));
    expect((await get(stored.key)).status).toBe(200); // still cached: nothing announced the change
    await gw.gateway.cacheInvalidator.keyChanged(stored.hash);
    expect((await get(stored.key)).body).toMatchObject({ status: 401, code: 'key_revoked' });
  });

  it('applies new overrides of a subject once the change is announced', async () => {
    const db = gw.gateway.databases!.primary;
    const stored = await storeTestKey(db, { subject: 'embedded-overrides' });
    expect((await get(stored.key)).headers['x-ratelimit-limit']).toBe('100');
    await db.transaction((tx) => setSubjectOverrides(tx, 'embedded-overrides', { limits: { minute: 500 } }));
    await gw.gateway.cacheInvalidator.subjectChanged('embedded-overrides');
    expect((await get(stored.key)).headers['x-ratelimit-limit']).toBe('500');
  });
});
