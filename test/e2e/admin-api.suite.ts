import { Readable } from 'node:stream';
import { request as undiciRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { isWellFormedApiKey } from '../../src/core/api-key.js';
import { createKeyAudited, revokeKeyAudited } from '../../src/admin/keys.js';
import { setPlanAudited } from '../../src/admin/subjects.js';
import { readUsage, upsertUsage } from '../../src/db/usage.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { FIXED_NOW_MS, startTestGateway, TEST_KEY, testConfig, type TestGateway } from '../support/test-gateway.js';

/**
 * The admin API through the real admin listener, on one engine: every
 * endpoint, its validation errors (exact field paths), the bearer token,
 * audit rows (a refused write leaves none), max_keys, rotation grace, and a
 * plain key in no response but create and rotate, nor in any log line.
 */

export const ADMIN_TOKEN = 'test-admin-token-7f3a9c2e';

const PLANS = `  small: { limits: { minute: 3, hour: 100 }, max_keys: 2 }
  pro: { limits: { hour: 1000 }, quotas: { search: { day: 50 } } }
  anonymous: { limits: { minute: 2 } }
  prepaid: { quotas: { search: { day: 1 } }, credits: { covers: [search.day] } }`;

interface ApiResponse {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly body: any;
}

interface Recorded extends ApiResponse {
  readonly method: string;
  readonly path: string;
}

export function adminApiSuite(engine: string, postgresSection: () => Promise<string>): void {
  describe(`admin API on ${engine}`, () => {
    let upstream: RecordingUpstream;
    let gw: TestGateway;
    const logLines: string[] = [];
    const responses: Recorded[] = [];
    /** Plain keys handed out, and the responses allowed to hold each. */
    const issued: { key: string; by: Recorded }[] = [];

    async function call(method: string, path: string, body?: unknown, token: string | null = ADMIN_TOKEN, raw?: string): Promise<ApiResponse> {
      const headers: Record<string, string> = {};
      if (token !== null) headers.authorization = `Bearer ${token}`;
      if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(gw.adminUrl + path, {
        method,
        headers,
        ...(raw !== undefined ? { body: raw } : body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      const recorded: Recorded = {
        method,
        path,
        status: res.status,
        contentType: res.headers.get('content-type') ?? '',
        text,
        body: text === '' ? undefined : JSON.parse(text),
      };
      responses.push(recorded);
      if (typeof recorded.body?.key === 'string') issued.push({ key: recorded.body.key, by: recorded });
      return recorded;
    }

    async function auditCount(subject: string): Promise<number> {
      return (await call('GET', `/admin/audit?subject=${encodeURIComponent(subject)}&limit=1000`)).body.items.length;
    }

    function expectValidation(res: ApiResponse, errors: { path: string; message?: string }[]): void {
      expect(res.status).toBe(400);
      expect(res.contentType).toBe('application/problem+json');
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(errors.map((e) => e.path));
      errors.forEach((error, i) => {
        if (error.message !== undefined) expect(res.body.errors[i].message).toBe(error.message);
      });
    }

    beforeAll(async () => {
      upstream = await startRecordingUpstream();
      gw = await startTestGateway(
        testConfig({
          upstreamOrigin: upstream.origin,
          routes: '  - { name: api, path_prefix: /, upstream: app }',
          plans: PLANS,
          postgres: await postgresSection(),
        }),
        { database: true, adminToken: ADMIN_TOKEN, logLines },
      );
    }, 60_000);

    afterAll(async () => {
      await gw?.gateway.shutdown();
      await upstream?.close();
    });

    describe('authentication', () => {
      it('refuses a request without a token with 401 admin_unauthorized and a Bearer challenge', async () => {
        const res = await fetch(`${gw.adminUrl}/admin/subjects`);
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="quotagate-admin"');
        expect(((await res.json()) as { code: string }).code).toBe('admin_unauthorized');
      });

      it('refuses a wrong token, a token that is a prefix of the right one, and another scheme', async () => {
        expect((await call('GET', '/admin/subjects', undefined, 'wrong')).body.code).toBe('admin_unauthorized');
        expect((await call('GET', '/admin/subjects', undefined, ADMIN_TOKEN.slice(0, -1))).status).toBe(401);
        const basic = await fetch(`${gw.adminUrl}/admin/subjects`, { headers: { authorization: `Basic ${ADMIN_TOKEN}` } });
        expect(basic.status).toBe(401);
      });

      it('serves the OpenAPI document without a token', async () => {
        const res = await call('GET', '/admin/openapi', undefined, null);
        expect(res.status).toBe(200);
        expect(res.body.openapi).toBe('3.1.0');
      });

      it('keeps /healthz and /metrics beside the API', async () => {
        expect((await fetch(`${gw.adminUrl}/healthz`)).status).toBe(200);
      });
    });

    describe('subjects', () => {
      it('creates a subject (201) and refuses the same id again (409, no second audit row)', async () => {
        const res = await call('POST', '/admin/subjects', { id: 'acme', plan: 'small', metadata: { tier: 'gold' } });
        expect(res.status).toBe(201);
        expect(res.body).toMatchObject({ id: 'acme', plan: 'small', metadata: { tier: 'gold' }, overrides: null, suspended_at: null });
        expect(await auditCount('acme')).toBe(1);
        const again = await call('POST', '/admin/subjects', { id: 'acme', plan: 'pro' });
        expect(again.status).toBe(409);
        expect(again.body.code).toBe('subject_exists');
        expect(await auditCount('acme')).toBe(1);
        expect((await call('GET', '/admin/subjects/acme')).body.plan).toBe('small');
      });

      it('names every bad field of a create by its path', async () => {
        expectValidation(await call('POST', '/admin/subjects', {}), [
          { path: 'id', message: 'required' },
          { path: 'plan', message: 'required' },
        ]);
        expectValidation(await call('POST', '/admin/subjects', { id: 'x', plan: 'small', colour: 'red', metadata: [] }), [
          { path: 'metadata', message: 'expected a mapping, got a list' },
          { path: 'colour', message: 'unknown field' },
        ]);
        expectValidation(await call('POST', '/admin/subjects', { id: '', plan: 'small' }), [{ path: 'id' }]);
        expectValidation(await call('POST', '/admin/subjects', { id: 'x', plan: 'gold' }), [
          { path: 'plan', message: 'unknown plan "gold" (defined: small, pro, anonymous, prepaid)' },
        ]);
        // A field checked against gateway.yaml is reported with the others, not after them (it was left out).
        expectValidation(await call('POST', '/admin/subjects', { id: '', plan: 'gold', colour: 'red' }), [
          { path: 'id' },
          { path: 'plan', message: 'unknown plan "gold" (defined: small, pro, anonymous, prepaid)' },
          { path: 'colour', message: 'unknown field' },
        ]);
        expectValidation(await call('POST', '/admin/subjects', undefined, ADMIN_TOKEN, '{"id":'), [
          { path: '(root)', message: 'expected a JSON body' },
        ]);
        expectValidation(
          await call('POST', '/admin/subjects', { id: 'x', plan: 'small', overrides: { limits: { hour: 0, week: 5 } } }),
          [{ path: 'overrides.limits.hour', message: 'must be at least 1' }, { path: 'overrides.limits.week' }],
        );
        expect((await call('GET', '/admin/subjects/x')).status).toBe(404);
      });

      it('refuses a body over 64 KiB with 413 payload_too_large, declared or chunked, creating nothing', async () => {
        const big = JSON.stringify({ id: 'big-body', plan: 'small', metadata: { blob: 'x'.repeat(70 * 1024) } });
        const declared = await call('POST', '/admin/subjects', undefined, ADMIN_TOKEN, big);
        expect(declared.status).toBe(413);
        expect(declared.contentType).toBe('application/problem+json');
        expect(declared.body.code).toBe('payload_too_large');
        const chunked = await undiciRequest(`${gw.adminUrl}/admin/subjects`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: Readable.from([big.slice(0, 40_000), big.slice(40_000)]),
        });
        expect(chunked.statusCode).toBe(413);
        expect(((await chunked.body.json()) as { code: string }).code).toBe('payload_too_large');
        expect((await call('GET', '/admin/subjects/big-body')).status).toBe(404);
        expect(await auditCount('big-body')).toBe(0);
      });

      it('answers deeply nested JSON with 400 validation_failed, never 500, creating nothing', async () => {
        const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);
        for (const depth of [32, 20_000]) {
          const raw = `{"id":"deep-${depth}","plan":"small","metadata":{"a":${nested(depth)}}}`;
          expectValidation(await call('POST', '/admin/subjects', undefined, ADMIN_TOKEN, raw), [
            { path: '(root)', message: 'expected at most 32 levels of nested arrays and objects' },
          ]);
          expect((await call('GET', `/admin/subjects/deep-${depth}`)).status).toBe(404);
        }
        // 32 levels in all (the body, metadata, and 30 arrays) are accepted.
        const raw = `{"id":"deep-ok","plan":"small","metadata":{"a":${nested(30)}}}`;
        expect((await call('POST', '/admin/subjects', undefined, ADMIN_TOKEN, raw)).status).toBe(201);
      });

      it('gets a subject, and 404 subject_not_found for an unknown one', async () => {
        expect((await call('GET', '/admin/subjects/acme')).body.id).toBe('acme');
        const missing = await call('GET', '/admin/subjects/nobody');
        expect(missing.status).toBe(404);
        expect(missing.body.code).toBe('subject_not_found');
      });

      it('lists subjects by id, one page at a time', async () => {
        for (const id of ['list-a', 'list-b', 'list-c']) expect((await call('POST', '/admin/subjects', { id, plan: 'pro' })).status).toBe(201);
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page: ApiResponse = await call('GET', `/admin/subjects?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`);
          expect(page.status).toBe(200);
          expect(page.body.items.length).toBeLessThanOrEqual(2);
          seen.push(...page.body.items.map((s: { id: string }) => s.id));
          cursor = page.body.next_cursor;
          pages++;
        } while (cursor !== null && pages < 20);
        expect(seen).toEqual([...seen].sort());
        expect(seen).toEqual(expect.arrayContaining(['acme', 'list-a', 'list-b', 'list-c']));
        expectValidation(await call('GET', '/admin/subjects?limit=0'), [{ path: 'limit', message: 'expected an integer 1–1000' }]);
        expectValidation(await call('GET', '/admin/subjects?limit=abc&sort=id'), [{ path: 'limit' }, { path: 'sort', message: 'unknown field' }]);
      });

      it('sets the plan (audited with from and to), refusing an unknown plan', async () => {
        const res = await call('PUT', '/admin/subjects/list-a/plan', { plan: 'small' });
        expect(res.status).toBe(200);
        expect(res.body.plan).toBe('small');
        const audit = await call('GET', '/admin/audit?target=subject:list-a&limit=1');
        expect(audit.body.items[0]).toMatchObject({ action: 'subject.set_plan', details: { from: 'pro', to: 'small' }, subject: 'list-a' });
        expectValidation(await call('PUT', '/admin/subjects/list-a/plan', { plan: 'gold' }), [{ path: 'plan' }]);
        expectValidation(await call('PUT', '/admin/subjects/list-a/plan', {}), [{ path: 'plan', message: 'required' }]);
        expect((await call('PUT', '/admin/subjects/nobody/plan', { plan: 'pro' })).status).toBe(404);
      });

      it('sets and removes overrides', async () => {
        const overrides = { limits: { hour: 500 }, quotas: { search: { day: 7 } } };
        const set = await call('PUT', '/admin/subjects/list-b/overrides', { overrides });
        expect(set.status).toBe(200);
        expect(set.body.overrides).toEqual(overrides);
        expectValidation(await call('PUT', '/admin/subjects/list-b/overrides', { overrides: { quotas: { search: { day: -1 } } } }), [
          { path: 'overrides.quotas.search.day', message: 'must be at least 1' },
        ]);
        expectValidation(await call('PUT', '/admin/subjects/list-b/overrides', {}), [{ path: 'overrides', message: 'required' }]);
        expect((await call('PUT', '/admin/subjects/list-b/overrides', { overrides: null })).body.overrides).toBeNull();
        expect((await call('PUT', '/admin/subjects/nobody/overrides', { overrides: null })).status).toBe(404);
      });

      it('suspends and reactivates', async () => {
        const suspended = await call('POST', '/admin/subjects/list-c/suspend');
        expect(suspended.status).toBe(200);
        expect(suspended.body.suspended_at).toEqual(expect.any(String));
        expect((await call('POST', '/admin/subjects/list-c/reactivate')).body.suspended_at).toBeNull();
        expect((await call('POST', '/admin/subjects/nobody/suspend')).status).toBe(404);
        expect((await call('POST', '/admin/subjects/nobody/reactivate')).status).toBe(404);
        const actions = (await call('GET', '/admin/audit?subject=list-c')).body.items.map((e: { action: string }) => e.action);
        expect(actions.slice(0, 2)).toEqual(['subject.reactivate', 'subject.suspend']);
      });

      it('deletes a subject (204, then 404) and keeps its audit rows', async () => {
        expect((await call('POST', '/admin/subjects', { id: 'doomed', plan: 'pro' })).status).toBe(201);
        expect((await call('DELETE', '/admin/subjects/doomed')).status).toBe(204);
        expect((await call('GET', '/admin/subjects/doomed')).status).toBe(404);
        expect((await call('DELETE', '/admin/subjects/doomed')).status).toBe(404);
        const actions = (await call('GET', '/admin/audit?subject=doomed')).body.items.map((e: { action: string }) => e.action);
        expect(actions).toEqual(['subject.delete', 'subject.create']);
      });
    });

    describe('keys', () => {
      let keyId: string;

      it('creates a key: the plain key once, well formed, its display prefix and no hash', async () => {
        const res = await call('POST', '/admin/subjects/acme/keys', { name: 'ci', scopes: ['read', 'write'], expires_at: '2027-01-01T00:00:00Z' });
        expect(res.status).toBe(201);
        expect(res.body).toMatchObject({ subject: 'acme', name: 'ci', scopes: ['read', 'write'], expires_at: '2027-01-01T00:00:00.000Z', revoked_at: null });
        expect(isWellFormedApiKey(res.body.key, 'qg')).toBe(true);
        expect(res.body.key.startsWith(res.body.prefix)).toBe(true);
        expect(res.body.prefix).toMatch(/^qg_[0-9A-Za-z]{4}$/);
        expect(res.text).not.toMatch(/[0-9a-f]{64}/);
        keyId = res.body.id;
      });

      it('lists keys with prefix, name and dates, never the key or its hash', async () => {
        const res = await call('GET', '/admin/subjects/acme/keys');
        expect(res.status).toBe(200);
        expect(res.body.items).toHaveLength(1);
        expect(res.body.items[0]).toMatchObject({ id: keyId, name: 'ci' });
        expect(Object.keys(res.body.items[0]).sort()).toEqual(
          ['created_at', 'expires_at', 'id', 'last_used_at', 'name', 'prefix', 'replaces_key_id', 'revoked_at', 'scopes', 'subject'].sort(),
        );
        expect(res.text).not.toMatch(/[0-9a-f]{64}/);
        expect((await call('GET', '/admin/subjects/nobody/keys')).status).toBe(404);
      });

      it('names bad key fields by path', async () => {
        expectValidation(await call('POST', '/admin/subjects/acme/keys', { scopes: ['ok', 'two words'], expires_at: 'tomorrow', name: '' }), [
          { path: 'name' },
          { path: 'scopes[1]', message: 'expected 1–128 visible ASCII characters' },
          { path: 'expires_at', message: 'expected an RFC 3339 date-time, e.g. 2026-07-01T00:00:00Z' },
        ]);
        expect((await call('POST', '/admin/subjects/nobody/keys', {})).body.code).toBe('subject_not_found');
      });

      it("enforces the plan's max_keys at creation, leaving no key and no audit row; a revoked key frees a place", async () => {
        expect((await call('POST', '/admin/subjects/acme/keys', {})).status).toBe(201);
        const before = await auditCount('acme');
        const refused = await call('POST', '/admin/subjects/acme/keys', { name: 'third' });
        expect(refused.status).toBe(409);
        expect(refused.body).toMatchObject({ code: 'max_keys_reached', max_keys: 2, live_keys: 2 });
        expect(await auditCount('acme')).toBe(before);
        expect((await call('GET', '/admin/subjects/acme/keys')).body.items).toHaveLength(2);
        const revoked = await call('POST', `/admin/keys/${keyId}/revoke`);
        expect(revoked.status).toBe(200);
        expect(revoked.body.revoked_at).toEqual(expect.any(String));
        expect(revoked.body.key).toBeUndefined();
        expect((await call('POST', '/admin/subjects/acme/keys', { name: 'third' })).status).toBe(201);
        expect((await call('POST', '/admin/keys/k_nope/revoke')).body.code).toBe('key_not_found');
      });

      it('rotates a key: a new plain key, and the old one ends after grace_ms', async () => {
        const created = await call('POST', '/admin/subjects', { id: 'rotor', plan: 'pro' });
        expect(created.status).toBe(201);
        const old = await call('POST', '/admin/subjects/rotor/keys', { name: 'prod', scopes: ['a'] });
        const rotated = await call('POST', `/admin/keys/${old.body.id}/rotate`, { grace_ms: 3_600_000 });
        expect(rotated.status).toBe(201);
        expect(isWellFormedApiKey(rotated.body.key, 'qg')).toBe(true);
        expect(rotated.body.key).not.toBe(old.body.key);
        expect(rotated.body).toMatchObject({ subject: 'rotor', name: 'prod', scopes: ['a'], replaces_key_id: old.body.id });
        expect(rotated.body.replaced).toMatchObject({ id: old.body.id, revoked_at: null, expires_at: new Date(FIXED_NOW_MS + 3_600_000).toISOString() });
        expect(rotated.body.replaced.key).toBeUndefined();
        const again = await call('POST', `/admin/keys/${old.body.id}/rotate`, {});
        expect(again.status).toBe(409);
        expect(again.body).toMatchObject({ code: 'key_not_rotatable', reason: 'already_rotated' });
        expectValidation(await call('POST', `/admin/keys/${rotated.body.id}/rotate`, { grace_ms: -1 }), [{ path: 'grace_ms', message: 'must be at least 0' }]);
        expect((await call('POST', '/admin/keys/k_nope/rotate', {})).status).toBe(404);
        const audit = await call('GET', `/admin/audit?target=key:${old.body.id}&limit=1`);
        expect(audit.body.items[0]).toMatchObject({ action: 'key.rotate', details: { new_key_id: rotated.body.id, grace_ms: 3_600_000 } });
      });
    });

    describe('usage, reset and credits', () => {
      it('reports every window of a subject with used / limit / remaining / reset from the store, and resets it', async () => {
        expect((await call('POST', '/admin/subjects', { id: 'customer-1', plan: 'small' })).status).toBe(201);
        for (let i = 0; i < 2; i++) expect((await fetch(`${gw.proxyUrl}/x`, { headers: { 'x-api-key': TEST_KEY } })).status).toBe(200);
        const usage = await call('GET', '/admin/subjects/customer-1/usage');
        expect(usage.status).toBe(200);
        expect(usage.body.plan).toBe('small');
        expect(usage.body.policies).toEqual([
          { name: 'minute', kind: 'window', window: 'minute', limit: 3, used: 2, remaining: 1, reset_seconds: 60, reset_at: new Date(FIXED_NOW_MS + 60_000).toISOString(), percent: 66.67 },
          { name: 'hour', kind: 'window', window: 'hour', limit: 100, used: 2, remaining: 98, reset_seconds: 1800, reset_at: new Date(FIXED_NOW_MS + 1_800_000).toISOString(), percent: 2 },
        ]);
        // What the flusher would have copied before the reset, and a past hour the reset leaves alone.
        const db = gw.gateway.databases!.primary;
        const minute = { counterId: 'w:minute', periodStart: new Date(FIXED_NOW_MS) };
        const hour = { counterId: 'w:hour', periodStart: new Date(FIXED_NOW_MS - 1_800_000) };
        const lastHour = { counterId: 'w:hour', periodStart: new Date(FIXED_NOW_MS - 5_400_000) };
        await upsertUsage(db, [
          { subjectId: 'customer-1', ...minute, count: 2 },
          { subjectId: 'customer-1', ...hour, count: 2 },
          { subjectId: 'customer-1', ...lastHour, count: 7 },
        ]);
        const reset = await call('POST', '/admin/subjects/customer-1/reset');
        expect(reset.status).toBe(200);
        expect(await readUsage(db, 'customer-1', [minute, hour, lastHour])).toEqual([
          { subjectId: 'customer-1', ...lastHour, count: 7 },
          { subjectId: 'customer-1', ...hour, count: 0 },
          { subjectId: 'customer-1', ...minute, count: 0 },
        ]);
        expect(reset.body).toEqual({ subject: 'customer-1', reset: ['minute', 'hour'] });
        const after = await call('GET', '/admin/subjects/customer-1/usage');
        expect(after.body.policies.map((p: { used: number }) => p.used)).toEqual([0, 0]);
        const audit = await call('GET', '/admin/audit?subject=customer-1&limit=1');
        expect(audit.body.items[0]).toMatchObject({ action: 'subject.reset', details: { policies: ['minute', 'hour'] } });
        expect((await call('GET', '/admin/subjects/nobody/usage')).status).toBe(404);
        expect((await call('POST', '/admin/subjects/nobody/reset')).status).toBe(404);
      });

      it('includes every metered quota of the plan', async () => {
        const usage = await call('GET', '/admin/subjects/list-a/usage');
        expect(usage.body.policies.map((p: { name: string }) => p.name)).toEqual(['minute', 'hour']);
        const pro = await call('GET', '/admin/subjects/rotor/usage');
        expect(pro.body.policies.map((p: { name: string; limit: number }) => [p.name, p.limit])).toEqual([
          ['hour', 1000],
          ['search.day', 50],
        ]);
      });

      it('answers GET /_quotagate/usage on the proxy with the caller\'s own key, charging nothing', async () => {
        const first = await fetch(`${gw.proxyUrl}/_quotagate/usage`, { headers: { 'x-api-key': TEST_KEY } });
        expect(first.status).toBe(200);
        const body = (await first.json()) as { plan: string; policies: { name: string; used: number; percent: number }[] };
        expect(body.plan).toBe('small');
        expect(body.policies.map((p) => [p.name, p.used])).toEqual([['minute', 0], ['hour', 0]]);
        const second = (await (await fetch(`${gw.proxyUrl}/_quotagate/usage`, { headers: { authorization: `Bearer ${TEST_KEY}` } })).json()) as typeof body;
        expect(second.policies.map((p) => p.used)).toEqual([0, 0]);
        expect(upstream.requests.some((r) => r.url.startsWith('/_quotagate'))).toBe(false);
        const anonymous = await fetch(`${gw.proxyUrl}/_quotagate/usage`);
        expect(anonymous.status).toBe(401);
        expect(((await anonymous.json()) as { code: string }).code).toBe('missing_credentials');
      });

      it('adds a grant to the store balance at once: the subject usage shows it', async () => {
        expect((await call('POST', '/admin/subjects', { id: 'buyer', plan: 'prepaid' })).status).toBe(201);
        expect((await call('GET', '/admin/subjects/buyer/usage')).body.credits).toEqual([{ metric: 'search', balance: 0 }]);
        expect((await call('POST', '/admin/subjects/buyer/credits', { metric: 'search', amount: 2 })).status).toBe(201);
        expect((await call('GET', '/admin/subjects/buyer/usage')).body.credits).toEqual([{ metric: 'search', balance: 2 }]);
        // The plain subjects' usage has no credits.
        expect((await call('GET', '/admin/subjects/rotor/usage')).body.credits).toBeUndefined();
      });

      it('grants credits of a metered metric, validating each field', async () => {
        const res = await call('POST', '/admin/subjects/rotor/credits', { metric: 'search', amount: 500, reason: 'goodwill', expires_at: '2027-01-01T00:00:00Z' });
        expect(res.status).toBe(201);
        expect(res.body).toMatchObject({ subject: 'rotor', metric: 'search', amount: 500, reason: 'goodwill', granted_at: new Date(FIXED_NOW_MS).toISOString() });
        expectValidation(await call('POST', '/admin/subjects/rotor/credits', { metric: 'Search!', amount: 0 }), [{ path: 'metric' }, { path: 'amount', message: 'must be at least 1' }]);
        expectValidation(await call('POST', '/admin/subjects/rotor/credits', { metric: 'uploads', amount: 1 }), [
          { path: 'metric', message: 'no plan meters "uploads"' },
        ]);
        expectValidation(await call('POST', '/admin/subjects/rotor/credits', { metric: 'uploads', amount: 0, reason: '' }), [
          { path: 'metric', message: 'no plan meters "uploads"' },
          { path: 'amount', message: 'must be at least 1' },
          { path: 'reason' },
        ]);
        expectValidation(await call('POST', '/admin/subjects/rotor/credits', { amount: 1.5 }), [
          { path: 'metric', message: 'required' },
          { path: 'amount', message: 'expected an integer' },
        ]);
        expect((await call('POST', '/admin/subjects/nobody/credits', { metric: 'search', amount: 1 })).status).toBe(404);
        const audit = await call('GET', '/admin/audit?subject=rotor&limit=1');
        expect(audit.body.items[0]).toMatchObject({ action: 'subject.grant_credits', details: { metric: 'search', amount: 500 } });
      });
    });

    describe('audit log', () => {
      it('filters by subject, target and time, pages newest first, and names the actor without the token', async () => {
        const all = await call('GET', '/admin/audit?subject=acme');
        expect(all.status).toBe(200);
        const actions = all.body.items.map((e: { action: string }) => e.action);
        expect(actions.at(-1)).toBe('subject.create');
        expect(actions).toContain('key.revoke');
        for (const entry of all.body.items) {
          expect(entry.actor).toMatch(/^admin:[0-9a-f]{8}$/);
          expect(entry.subject).toBe('acme');
        }
        const paged: unknown[] = [];
        let cursor: string | null = null;
        do {
          const page: ApiResponse = await call('GET', `/admin/audit?subject=acme&limit=2${cursor === null ? '' : `&cursor=${cursor}`}`);
          paged.push(...page.body.items);
          cursor = page.body.next_cursor;
        } while (cursor !== null);
        expect(paged).toEqual(all.body.items);
        const at = new Date(FIXED_NOW_MS).toISOString();
        expect((await call('GET', `/admin/audit?subject=acme&from=${at}`)).body.items).toHaveLength(all.body.items.length);
        expect((await call('GET', `/admin/audit?subject=acme&to=${at}`)).body.items).toHaveLength(0);
        expectValidation(await call('GET', '/admin/audit?from=yesterday&cursor=zzz'), [
          { path: 'from' },
          { path: 'cursor', message: 'not a cursor this API handed out' },
        ]);
        expectValidation(await call('GET', '/admin/audit?cursor=zzz'), [{ path: 'cursor', message: 'not a cursor this API handed out' }]);
      });
    });

    describe('audit rows and their change commit together', () => {
      it('rolls the change back when its audit row cannot be written, and tells no cache', async () => {
        const db = gw.gateway.databases!.primary;
        const told: string[] = [];
        const ctx = { db, plans: parseConfigText(testConfig({ upstreamOrigin: upstream.origin, routes: '  - { name: api, path_prefix: /, upstream: app }', plans: PLANS }), 't.yaml', {}).plans, keyPrefix: 'qg', clock: gw.clock, actor: 'x'.repeat(300), subjectChanged: async (id: string) => void told.push(id) };
        const before = await call('GET', '/admin/subjects/list-a');
        await expect(setPlanAudited(ctx, 'list-a', 'pro')).rejects.toThrow();
        await expect(createKeyAudited(ctx, 'list-a', {})).rejects.toThrow();
        await expect(revokeKeyAudited(ctx, 'k_nope')).rejects.toMatchObject({ code: 'key_not_found' });
        expect((await call('GET', '/admin/subjects/list-a')).body).toEqual(before.body);
        expect((await call('GET', '/admin/subjects/list-a/keys')).body.items).toEqual([]);
        expect(told).toEqual([]);
      });
    });

    describe('keys on the proxy', () => {
      const proxyGet = (key: string) => fetch(`${gw.proxyUrl}/x`, { headers: { 'x-api-key': key } });
      const codeOf = async (res: Response) => ((await res.json()) as { code: string }).code;

      it('admits a key created through the API at once, and refuses it once revoked (key_revoked)', async () => {
        expect((await call('POST', '/admin/subjects', { id: 'live', plan: 'pro' })).status).toBe(201);
        const created = await call('POST', '/admin/subjects/live/keys', {});
        expect((await proxyGet(created.body.key)).status).toBe(200);
        expect((await call('POST', `/admin/keys/${created.body.id}/revoke`)).status).toBe(200);
        const refused = await proxyGet(created.body.key);
        expect(refused.status).toBe(401);
        expect(await codeOf(refused)).toBe('key_revoked');
      });

      it('refuses the keys of a suspended subject (403 subject_suspended) until it is reactivated', async () => {
        const created = await call('POST', '/admin/subjects/live/keys', {});
        expect((await proxyGet(created.body.key)).status).toBe(200);
        expect((await call('POST', '/admin/subjects/live/suspend')).status).toBe(200);
        const refused = await proxyGet(created.body.key);
        expect(refused.status).toBe(403);
        expect(await codeOf(refused)).toBe('subject_suspended');
        expect((await call('POST', '/admin/subjects/live/reactivate')).status).toBe(200);
        expect((await proxyGet(created.body.key)).status).toBe(200);
      });

      it('keeps a rotated key working for the grace period, then refuses it (key_expired); the new key works', async () => {
        const old = await call('POST', '/admin/subjects/live/keys', {});
        expect((await proxyGet(old.body.key)).status).toBe(200);
        const rotated = await call('POST', `/admin/keys/${old.body.id}/rotate`, { grace_ms: 60_000 });
        expect(rotated.status).toBe(201);
        expect((await proxyGet(old.body.key)).status).toBe(200);
        expect((await proxyGet(rotated.body.key)).status).toBe(200);
        gw.clock.advance(60_000);
        const expired = await proxyGet(old.body.key);
        expect(expired.status).toBe(401);
        expect(await codeOf(expired)).toBe('key_expired');
        expect((await proxyGet(rotated.body.key)).status).toBe(200);
      });
    });

    describe('plain keys', () => {
      it('appear only in the create and rotate responses: no other response body and no log line holds one', async () => {
        expect(issued.length).toBeGreaterThanOrEqual(5);
        for (const { key, by } of issued) {
          expect(by.method).toBe('POST');
          expect(by.path).toMatch(/^\/admin\/(subjects\/[^/]+\/keys|keys\/[^/]+\/rotate)$/);
          const holders = responses.filter((r) => r.text.includes(key));
          expect(holders).toEqual([by]);
          expect(logLines.filter((line) => line.includes(key))).toEqual([]);
        }
        expect(logLines.filter((line) => line.includes(ADMIN_TOKEN))).toEqual([]);
      });
    });
  });
}
