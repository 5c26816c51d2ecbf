import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, TEST_KEY, testConfig, type TestGateway } from '../support/test-gateway.js';
import { eventuallyAsync } from '../support/within.js';
import { ADMIN_TOKEN } from './admin-api.suite.js';

/**
 * An abuse rule on the memory store (one instance: its own counts are the
 * fleet's): the sixth denial of a minute blocks the subject, 403
 * subject_blocked with Retry-After on every route, audited, lifted by the
 * admin API; and the block ends by itself at block_seconds.
 */
describe('denial spikes on the memory store', () => {
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  const send = async (path: string) => {
    const res = await request(`${gw.proxyUrl}${path}`, { headers: { 'x-api-key': TEST_KEY } });
    await res.body.dump();
    return { status: res.statusCode, retryAfter: res.headers['retry-after'] };
  };
  const admin = async (path: string, method = 'GET') =>
    (await fetch(gw.adminUrl + path, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json() as Promise<Record<string, unknown>>;

  beforeAll(async () => {
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: '  - { name: metered, path_prefix: /metered, upstream: app, quota: calls }\n  - { name: api, path_prefix: /, upstream: app }',
        plans: `  small:
    limits: { hour: 1000 }
    quotas: { calls: { minute: 1 } }
    abuse: { denials_per_minute: 5, action: block, block_seconds: 120 }
  anonymous: { limits: { minute: 2 } }`,
      }),
      { database: true, adminToken: ADMIN_TOKEN },
    );
  }, 60_000);

  afterAll(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
  });

  it('blocks after the sixth denial of a minute, until the admin API lifts it; a later spike blocks again, and the block ends by itself', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await send('/metered')).status);
    expect(statuses).toEqual([200, 429, 429, 429, 429, 429]);
    // Five denials: not a spike.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await send('/')).status).toBe(200);
    expect((await send('/metered')).status).toBe(429);
    await eventuallyAsync(async () => (await send('/')).status === 403, 10_000, 'the block');
    expect(await send('/')).toEqual({ status: 403, retryAfter: '120' });
    const audit = (await admin('/admin/audit?subject=customer-1')) as { items: Array<{ action: string; details: Record<string, unknown> }> };
    expect(audit.items.map((entry) => entry.action)).toEqual(['subject.block']);
    expect(audit.items[0]!.details).toMatchObject({ plan: 'small', denials: 6, threshold: 5, minute_start: '2026-06-15T10:30:00.000Z' });
    expect(await admin('/admin/subjects/customer-1/block', 'DELETE')).toEqual({ subject: 'customer-1', was_blocked: true });
    expect((await send('/')).status).toBe(200);

    // The next minute: a new spike, a new block, which ends after block_seconds.
    gw.clock.advance(60_000);
    for (let i = 0; i < 7; i++) await send('/metered');
    await eventuallyAsync(async () => (await send('/')).status === 403, 10_000, 'the second block');
    gw.clock.advance(120_000);
    expect((await send('/')).status).toBe(200);
  }, 60_000);
});
