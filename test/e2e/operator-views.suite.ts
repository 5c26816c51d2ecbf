import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDenials } from '../../src/db/denials.js';
import { upsertUsage } from '../../src/db/usage.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { FIXED_NOW_MS, startTestGateway, testConfig, type TestGateway } from '../support/test-gateway.js';
import { eventuallyAsync } from '../support/within.js';
import { ADMIN_TOKEN } from './admin-api.suite.js';

/**
 * The operator views (`/admin/views/*`) through the real admin listener, on
 * one engine: exact results from a known ledger and denials fixture (and
 * denials counted from real 429s), filters, cursor pagination, and 400
 * problem+json for bad parameters.
 */

const PLANS = `  small: { limits: { hour: 100 }, quotas: { search: { month: 10 } } }
  pro: { limits: { hour: 1000 } }
  keyed: { limits: { hour: 100 }, limit_by: key }
  tight: { limits: { minute: 2 } }
  anonymous: { limits: { minute: 2 } }`;

const HOUR = new Date(Date.UTC(2026, 5, 15, 10));
const MONTH = new Date(Date.UTC(2026, 5, 1));
const MAY = new Date(Date.UTC(2026, 4, 1));
const MINUTE_MS = 60_000;
const NOW_MINUTE = new Date(FIXED_NOW_MS - (FIXED_NOW_MS % MINUTE_MS));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export function operatorViewsSuite(engine: string, postgresSection: () => Promise<string>): void {
  describe(`operator views on ${engine}`, () => {
    let upstream: RecordingUpstream;
    let gw: TestGateway;

    const admin = async (path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; type: string; body: Json }> => {
      const res = await fetch(gw.adminUrl + path, {
        method: init.method ?? 'GET',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      });
      const text = await res.text();
      return { status: res.status, type: res.headers.get('content-type') ?? '', body: text === '' ? undefined : JSON.parse(text) };
    };
    const expectBadRequest = async (path: string, field: string) => {
      const res = await admin(path);
      expect(res.status, path).toBe(400);
      expect(res.type).toBe('application/problem+json');
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors.map((error: { path: string }) => error.path)).toEqual([field]);
    };

    beforeAll(async () => {
      upstream = await startRecordingUpstream();
      gw = await startTestGateway(
        testConfig({
          upstreamOrigin: upstream.origin,
          routes: '  - { name: api, path_prefix: /, upstream: app }',
          plans: PLANS,
          postgres: await postgresSection(),
          extra: 'usage:\n  flush_interval_ms: 100\n',
        }),
        { database: true, adminToken: ADMIN_TOKEN },
      );
      for (const [id, plan, overrides] of [
        ['alpha', 'small', undefined],
        ['beta', 'small', { limits: { hour: 50 } }],
        ['gamma', 'pro', undefined],
        ['keyed', 'keyed', undefined],
        ['acme', 'tight', undefined],
      ] as const) {
        expect((await admin('/admin/subjects', { method: 'POST', body: { id, plan, ...(overrides === undefined ? {} : { overrides }) } })).status).toBe(201);
      }
      const db = gw.gateway.databases!.primary;
      await upsertUsage(db, [
        { subjectId: 'alpha', counterId: 'w:hour', periodStart: HOUR, count: 90 },
        { subjectId: 'alpha', counterId: 'q:search:month', periodStart: MONTH, count: 9 },
        { subjectId: 'alpha', counterId: 'w:month', periodStart: MONTH, count: 300 },
        { subjectId: 'beta', counterId: 'w:hour', periodStart: HOUR, count: 45 },
        { subjectId: 'beta', counterId: 'w:month', periodStart: MONTH, count: 45 },
        { subjectId: 'gamma', counterId: 'w:hour', periodStart: HOUR, count: 700 },
        { subjectId: 'gamma', counterId: 'w:month', periodStart: MONTH, count: 700 },
        { subjectId: 'gamma', counterId: 'w:month', periodStart: MAY, count: 5000 },
        { subjectId: 'keyed/key:k_a', counterId: 'w:hour', periodStart: HOUR, count: 100 },
        { subjectId: 'keyed/key:k_a', counterId: 'w:month', periodStart: MONTH, count: 100 },
        { subjectId: 'keyed/key:k_b', counterId: 'w:hour', periodStart: HOUR, count: 10 },
        { subjectId: 'keyed/key:k_b', counterId: 'w:month', periodStart: MONTH, count: 10 },
        // Not a subject the database knows: no plan to be near, but a consumer all the same.
        { subjectId: 'stranger', counterId: 'w:hour', periodStart: HOUR, count: 5000 },
      ]);
      await addDenials(db, [
        { subjectId: 'zed', minute: new Date(NOW_MINUTE.getTime() - 5 * MINUTE_MS), count: 10 },
        { subjectId: 'zed', minute: new Date(NOW_MINUTE.getTime() - 61 * MINUTE_MS), count: 1 },
        { subjectId: 'yak', minute: new Date(NOW_MINUTE.getTime() - 2 * MINUTE_MS), count: 3 },
      ]);
      // acme's plan admits 2 a minute: 5 requests, 3 denials, counted by the gateway and flushed within a second.
      const key = (await admin('/admin/subjects/acme/keys', { method: 'POST', body: {} })).body.key as string;
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await request(`${gw.proxyUrl}/x`, { headers: { 'x-api-key': key } });
        await res.body.text();
        statuses.push(res.statusCode);
      }
      expect(statuses).toEqual([200, 200, 429, 429, 429]);
      await eventuallyAsync(
        async () => (await admin('/admin/views/denials?subject=acme')).body.items[0]?.denials === 3,
        10_000,
        "acme's 3 denials in the denials table",
      );
      await eventuallyAsync(
        async () => (await admin('/admin/views/top-consumers?policy=month')).body.items.some((item: { subject: string }) => item.subject === 'acme'),
        10_000,
        "acme's 2 admitted requests in the ledger",
      );
    }, 60_000);

    afterAll(async () => {
      await gw?.gateway.shutdown();
      await upstream?.close();
    });

    describe('GET /admin/views/near-limits', () => {
      it('lists subjects and keys at or over 80 % of a current limit, highest first, each policy over it by percent', async () => {
        const res = await admin('/admin/views/near-limits');
        expect(res.status).toBe(200);
        expect(res.body).toEqual({
          threshold: 80,
          items: [
            { subject: 'keyed', key_id: 'k_a', plan: 'keyed', policies: [{ name: 'hour', used: 100, limit: 100, percent: 100 }] },
            {
              subject: 'alpha',
              key_id: null,
              plan: 'small',
              policies: [
                { name: 'search.month', used: 9, limit: 10, percent: 90 },
                { name: 'hour', used: 90, limit: 100, percent: 90 },
              ],
            },
            // beta's own limit (50), not the plan's (100).
            { subject: 'beta', key_id: null, plan: 'small', policies: [{ name: 'hour', used: 45, limit: 50, percent: 90 }] },
          ],
          next_cursor: null,
        });
      });

      it('takes a threshold and a plan', async () => {
        const at70 = await admin('/admin/views/near-limits?threshold=70');
        expect(at70.body.items.map((item: { subject: string; key_id: string | null }) => [item.subject, item.key_id])).toEqual([
          ['keyed', 'k_a'],
          ['alpha', null],
          ['beta', null],
          ['gamma', null],
        ]);
        const pro = await admin('/admin/views/near-limits?threshold=70&plan=pro');
        expect(pro.body.items).toEqual([{ subject: 'gamma', key_id: null, plan: 'pro', policies: [{ name: 'hour', used: 700, limit: 1000, percent: 70 }] }]);
        expect((await admin('/admin/views/near-limits?threshold=100')).body.items.map((item: { subject: string }) => item.subject)).toEqual(['keyed']);
      });

      it('pages with a cursor', async () => {
        const first = await admin('/admin/views/near-limits?limit=2');
        expect(first.body.items.map((item: { subject: string }) => item.subject)).toEqual(['keyed', 'alpha']);
        expect(first.body.next_cursor).toEqual(expect.any(String));
        const second = await admin(`/admin/views/near-limits?limit=2&cursor=${first.body.next_cursor}`);
        expect(second.body.items.map((item: { subject: string }) => item.subject)).toEqual(['beta']);
        expect(second.body.next_cursor).toBeNull();
      });

      it('refuses bad parameters with 400 validation_failed naming the parameter', async () => {
        await expectBadRequest('/admin/views/near-limits?threshold=0', 'threshold');
        await expectBadRequest('/admin/views/near-limits?threshold=eighty', 'threshold');
        await expectBadRequest('/admin/views/near-limits?plan=gold', 'plan');
        await expectBadRequest('/admin/views/near-limits?cursor=bm9wZQ', 'cursor');
        await expectBadRequest('/admin/views/near-limits?limit=0', 'limit');
        await expectBadRequest('/admin/views/near-limits?sort=name', 'sort');
      });
    });

    describe('GET /admin/views/top-consumers', () => {
      it('lists counting ids by units used this month, most first, keys apart', async () => {
        const res = await admin('/admin/views/top-consumers?policy=month&period=current');
        expect(res.status).toBe(200);
        expect(res.body).toEqual({
          policy: 'month',
          period_start: '2026-06-01T00:00:00.000Z',
          period_end: '2026-07-01T00:00:00.000Z',
          items: [
            { subject: 'gamma', key_id: null, used: 700 },
            { subject: 'alpha', key_id: null, used: 300 },
            { subject: 'keyed', key_id: 'k_a', used: 100 },
            { subject: 'beta', key_id: null, used: 45 },
            { subject: 'keyed', key_id: 'k_b', used: 10 },
            { subject: 'acme', key_id: null, used: 2 },
          ],
          next_cursor: null,
        });
      });

      it('reads a quota, a past period, and pages', async () => {
        expect((await admin('/admin/views/top-consumers?policy=search.month')).body.items).toEqual([{ subject: 'alpha', key_id: null, used: 9 }]);
        const may = await admin('/admin/views/top-consumers?policy=month&period=2026-05-01T00:00:00Z');
        expect(may.body).toMatchObject({ period_start: '2026-05-01T00:00:00.000Z', items: [{ subject: 'gamma', key_id: null, used: 5000 }] });
        const first = await admin('/admin/views/top-consumers?limit=2');
        expect(first.body.items.map((item: { used: number }) => item.used)).toEqual([700, 300]);
        const second = await admin(`/admin/views/top-consumers?limit=2&cursor=${first.body.next_cursor}`);
        expect(second.body.items.map((item: { used: number }) => item.used)).toEqual([100, 45]);
        const third = await admin(`/admin/views/top-consumers?limit=2&cursor=${second.body.next_cursor}`);
        expect(third.body.items.map((item: { used: number }) => item.used)).toEqual([10, 2]);
        expect(third.body.next_cursor).toBeNull();
      });

      it('refuses bad parameters with 400 validation_failed naming the parameter', async () => {
        await expectBadRequest('/admin/views/top-consumers?policy=week', 'policy');
        await expectBadRequest('/admin/views/top-consumers?policy=Search.month', 'policy');
        await expectBadRequest('/admin/views/top-consumers?period=2026-06-02T00:00:00Z', 'period');
        await expectBadRequest('/admin/views/top-consumers?period=last', 'period');
        await expectBadRequest('/admin/views/top-consumers?cursor=bm9wZQ', 'cursor');
      });
    });

    describe('GET /admin/views/denials', () => {
      it('sums each subject\'s denials over the last hour, most first, real 429s included', async () => {
        const res = await admin('/admin/views/denials?window=1h');
        expect(res.status).toBe(200);
        expect(res.body).toEqual({
          window_minutes: 60,
          since: '2026-06-15T09:31:00.000Z',
          items: [
            { subject: 'zed', denials: 10, last_minute: '2026-06-15T10:25:00.000Z' },
            { subject: 'acme', denials: 3, last_minute: '2026-06-15T10:30:00.000Z' },
            { subject: 'yak', denials: 3, last_minute: '2026-06-15T10:28:00.000Z' },
          ],
          next_cursor: null,
        });
      });

      it('takes a shorter window and a subject, and pages', async () => {
        expect((await admin('/admin/views/denials?window=1m')).body.items.map((item: { subject: string }) => item.subject)).toEqual(['acme']);
        expect((await admin('/admin/views/denials?window=3m')).body.items.map((item: { subject: string }) => item.subject)).toEqual(['acme', 'yak']);
        expect((await admin('/admin/views/denials?window=24h&subject=zed')).body.items).toEqual([{ subject: 'zed', denials: 11, last_minute: '2026-06-15T10:25:00.000Z' }]);
        const first = await admin('/admin/views/denials?limit=1');
        expect(first.body.items.map((item: { subject: string }) => item.subject)).toEqual(['zed']);
        const second = await admin(`/admin/views/denials?limit=1&cursor=${first.body.next_cursor}`);
        expect(second.body.items.map((item: { subject: string }) => item.subject)).toEqual(['acme']);
      });

      it('refuses bad parameters with 400 validation_failed naming the parameter', async () => {
        await expectBadRequest('/admin/views/denials?window=2d', 'window');
        await expectBadRequest('/admin/views/denials?window=0m', 'window');
        await expectBadRequest('/admin/views/denials?window=25h', 'window');
        await expectBadRequest('/admin/views/denials?cursor=bm9wZQ', 'cursor');
      });
    });
  });
}
