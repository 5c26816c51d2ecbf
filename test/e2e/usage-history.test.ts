import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { FIXED_NOW_MS, startTestGateway, testConfig, type TestGateway } from '../support/test-gateway.js';
import { eventuallyAsync } from '../support/within.js';
import { ADMIN_TOKEN } from './admin-api.suite.js';

/** `GET /admin/subjects/{id}/usage/history`: the ledger per period, included, overage and credits apart; JSON and CSV; paged. */
const PLANS = `  small:
    limits: { hour: 100 }
    quotas:
      search:
        month: 3
        overage:
          max: 5
  anonymous: { limits: { minute: 2 } }`;

const ROUTES = `
  - { name: search, path_prefix: /search, upstream: app, quota: search }
  - { name: api, path_prefix: /, upstream: app }`;

describe('usage history from the ledger (embedded database, memory store)', () => {
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  let key: string;
  const admin = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(gw.adminUrl + path, { headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...headers } });
    return res;
  };
  const send = async (path: string) => {
    const res = await request(`${gw.proxyUrl}${path}`, { headers: { 'x-api-key': key } });
    await res.body.text();
    return res.statusCode;
  };
  type History = { items: Array<Record<string, unknown>>; next_cursor: string | null };
  const history = async (query: string) => (await (await admin(`/admin/subjects/acme/usage/history?${query}`)).json()) as History;

  beforeAll(async () => {
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    const config = testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES, plans: PLANS, extra: 'usage:\n  flush_interval_ms: 100\n' });
    gw = await startTestGateway(config, { database: true, adminToken: ADMIN_TOKEN });
    const post = (path: string, body: unknown) =>
      fetch(gw.adminUrl + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post('/admin/subjects', { id: 'acme', plan: 'small' })).status).toBe(201);
    key = ((await (await post('/admin/subjects/acme/keys', { name: 'ci' })).json()) as { key: string }).key;
    // Hour 10: 4 searches (1 past the limit); hour 11: 2 more searches and 1 other request.
    for (let i = 0; i < 4; i++) expect(await send('/search')).toBe(200);
    gw.clock.advance(3_600_000);
    for (let i = 0; i < 2; i++) expect(await send('/search')).toBe(200);
    expect(await send('/other')).toBe(200);
    // The flusher runs every 100 ms: wait (bounded) until the ledger has the last charge.
    await eventuallyAsync(
      async () => (await history('granularity=month&from=2026-06-01T00:00:00Z')).items.some((item) => item.name === 'requests' && item.used === 7),
      10_000,
      'the ledger to hold the 7 requests',
    );
  });
  afterAll(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
  });

  it('reports the month with included and overage apart', async () => {
    const month = await history('granularity=month&from=2026-06-01T00:00:00Z');
    expect(month).toEqual({
      subject: 'acme',
      granularity: 'month',
      items: [
        { period_start: '2026-06-01T00:00:00.000Z', period_end: '2026-07-01T00:00:00.000Z', name: 'requests', used: 7, included: 7, overage: 0, credits: 0 },
        { period_start: '2026-06-01T00:00:00.000Z', period_end: '2026-07-01T00:00:00.000Z', name: 'search', used: 6, included: 3, overage: 3, credits: 0 },
      ],
      next_cursor: null,
    });
  });

  it('pages hour buckets oldest first, one period a page, with a cursor', async () => {
    const from = new Date(FIXED_NOW_MS - 86_400_000).toISOString();
    const first = await history(`granularity=hour&from=${from}&limit=1`);
    expect(first.items).toEqual([
      { period_start: '2026-06-15T10:00:00.000Z', period_end: '2026-06-15T11:00:00.000Z', name: 'requests', used: 4, included: 4, overage: 0, credits: 0 },
    ]);
    expect(first.next_cursor).toEqual(expect.any(String));
    const second = await history(`granularity=hour&from=${from}&limit=1&cursor=${first.next_cursor}`);
    expect(second.items.map((item) => [item.period_start, item.used])).toEqual([['2026-06-15T11:00:00.000Z', 3]]);
    expect(second.next_cursor).toBeNull();
  });

  it('answers CSV for Accept: text/csv', async () => {
    const res = await admin('/admin/subjects/acme/usage/history?granularity=month&from=2026-06-01T00:00:00Z', { accept: 'text/csv' });
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(await res.text()).toBe(
      'subject,period_start,period_end,name,used,included,overage,credits\r\n' +
        'acme,2026-06-01T00:00:00.000Z,2026-07-01T00:00:00.000Z,requests,7,7,0,0\r\n' +
        'acme,2026-06-01T00:00:00.000Z,2026-07-01T00:00:00.000Z,search,6,3,3,0\r\n',
    );
  });

  it('gives the caller its own history on GET /_quotagate/usage/history, JSON and CSV, and nobody else\'s', async () => {
    const own = await request(`${gw.proxyUrl}/_quotagate/usage/history?granularity=month&from=2026-06-01T00:00:00Z`, { headers: { 'x-api-key': key } });
    expect(own.statusCode).toBe(200);
    expect(await own.body.json()).toEqual(await history('granularity=month&from=2026-06-01T00:00:00Z'));
    const csv = await request(`${gw.proxyUrl}/_quotagate/usage/history?granularity=month&from=2026-06-01T00:00:00Z`, {
      headers: { 'x-api-key': key, accept: 'text/csv' },
    });
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect((await csv.body.text()).split('\r\n')[2]).toBe('acme,2026-06-01T00:00:00.000Z,2026-07-01T00:00:00.000Z,search,6,3,3,0');
    const anonymous = await request(`${gw.proxyUrl}/_quotagate/usage/history`);
    await anonymous.body.text();
    expect(anonymous.statusCode).toBe(401);
    const bad = await request(`${gw.proxyUrl}/_quotagate/usage/history?granularity=week`, { headers: { 'x-api-key': key } });
    expect(((await bad.body.json()) as { code: string }).code).toBe('bad_request');
  });

  it('refuses a bad query with 400 and an unknown subject with 404', async () => {
    expect((await admin('/admin/subjects/acme/usage/history?granularity=week')).status).toBe(400);
    expect((await admin('/admin/subjects/acme/usage/history?cursor=bm9wZQ')).status).toBe(400);
    expect((await admin('/admin/subjects/nobody/usage/history')).status).toBe(404);
  });
});
