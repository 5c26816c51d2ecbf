/**
 * openapi/admin.yaml against the live admin API: every operation of the
 * document is called on a running gateway, and every answer's status,
 * media type, body and documented headers are checked against the
 * document's schema for that operation and status (ajv). The last test
 * fails if an operation, or a status the document lists for it, was never
 * seen: the document can promise nothing the API does not do.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openapiDocumentPath } from '../../src/http/routes/admin-api/admin-api.js';
import { OpenapiResponses } from '../support/openapi-responses.js';
import { startPostgresCluster, type PostgresCluster } from '../support/postgres-cluster.js';
import { unusedPort } from '../support/ports.js';
import { recordQuotaEvents } from '../../src/db/quota-events.js';
import { connectTestDatabase, createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, testConfig, type TestGateway } from '../support/test-gateway.js';

const TOKEN = 'openapi-test-admin-token-41c9';
const PLANS = `  small: { limits: { minute: 30, hour: 100 }, max_keys: 1 }
  pro: { limits: { hour: 1000 }, quotas: { search: { day: 50 } } }
  anonymous: { limits: { minute: 2 } }`;

const spec = new OpenapiResponses(openapiDocumentPath());
const scratch = mkdtempSync(join(tmpdir(), 'quotagate-openapi-'));
let upstream: RecordingUpstream;
let database: TestDatabase;
/** The gateway under test: admin token, a database, memory store, reloadable from `configFile`. */
let gateway: TestGateway;
/** No admin token: the API is off. */
let off: TestGateway;
/** The same database behind a Redis store that does not answer: the usage operations fail. */
let storeDown: TestGateway;
/** On a PostgreSQL server of its own, stopped once the gateway started: every database operation fails. */
let databaseDown: TestGateway;
let cluster: PostgresCluster;
let configFile: string;
let configText: string;

beforeAll(async () => {
  upstream = await startRecordingUpstream();
  database = await createTestDatabase();
  // One route, the plans above, and the given `postgres:` section.
  const gatewayYaml = (postgres: string): string =>
    testConfig({ upstreamOrigin: upstream.origin, routes: '  - { name: api, path_prefix: /, upstream: app }', plans: PLANS, postgres });
  configText = gatewayYaml(`  url: "${database.url}"`);
  configFile = join(scratch, 'gateway.yaml');
  writeFileSync(configFile, configText);
  gateway = await startTestGateway(configText, { database: true, adminToken: TOKEN, configFile });
  off = await startTestGateway(configText, { database: false });
  const deadPort = await unusedPort();
  storeDown = await startTestGateway(
    `${configText}\nstore:\n  type: redis\n  redis: { url: "redis://127.0.0.1:${deadPort}", connect_timeout_ms: 50, command_timeout_ms: 50 }\n`,
    { database: true, adminToken: TOKEN },
  );
  cluster = await startPostgresCluster();
  databaseDown = await startTestGateway(gatewayYaml(`  url: "${cluster.url}"\n  connect_timeout_ms: 1000\n  statement_timeout_ms: 2000`), {
    database: true,
    adminToken: TOKEN,
  });
  await cluster.stop();
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([gateway?.gateway.shutdown(), off?.gateway.shutdown(), storeDown?.gateway.shutdown(), databaseDown?.gateway.shutdown()]);
  await Promise.allSettled([upstream?.close(), cluster?.destroy()]);
  await database?.drop();
  rmSync(scratch, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body, checked against the document
  readonly body: any;
}

/**
 * Calls `operationId` (its path template filled from `params`, `query`
 * appended) on `target`, asserts the answer conforms to the document, and
 * returns its status and parsed body.
 */
async function call(
  operationId: string,
  options: { params?: Record<string, string>; query?: string; body?: unknown; token?: string | null; target?: TestGateway } = {},
): Promise<Answer> {
  const operation = spec.operation(operationId);
  const path = operation.path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(options.params?.[name] ?? `missing-${name}`));
  const token = options.token === undefined ? TOKEN : options.token;
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${(options.target ?? gateway).adminUrl}${path}${options.query === undefined ? '' : `?${options.query}`}`, {
    method: operation.method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await res.text();
  expect(spec.problems(operationId, { status: res.status, headers: res.headers, text })).toEqual([]);
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

/** Any value for each path parameter: enough to reach the auth checks. */
const ANY_PARAMS = { id: 'acme', keyId: 'k_any' };

describe('openapi/admin.yaml against the live admin API', () => {
  it('serves the document itself at GET /admin/openapi, without a token', async () => {
    const res = await call('getOpenapiDocument', { token: null });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(spec.document);
  });

  it('answers every operation that needs the token with 401 admin_unauthorized without one, and with a wrong one', async () => {
    const guarded = [...spec.operations.values()].filter((operation) => operation.needsToken);
    expect(guarded.length).toBe(spec.operations.size - 1);
    for (const operation of guarded) {
      expect((await call(operation.operationId, { params: ANY_PARAMS, token: null })).body.code).toBe('admin_unauthorized');
      expect((await call(operation.operationId, { params: ANY_PARAMS, token: 'wrong' })).status).toBe(401);
    }
  });

  it('answers every operation, the document included, with 404 admin_disabled when the gateway has no admin token', async () => {
    for (const operation of spec.operations.values()) {
      const res = await call(operation.operationId, { params: ANY_PARAMS, target: off, body: operation.method === 'GET' ? undefined : {} });
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('admin_disabled');
    }
  });

  it('subjects: create, list, get, plan, overrides, suspend, reactivate, and their refusals', async () => {
    expect((await call('createSubject', { body: { id: 'acme', plan: 'small', metadata: { tier: 'gold' } } })).status).toBe(201);
    expect((await call('createSubject', { body: { id: 'acme', plan: 'small' } })).body.code).toBe('subject_exists');
    expect((await call('createSubject', { body: { id: '', plan: 'gold' } })).body.errors).toHaveLength(2);
    expect((await call('listSubjects', { query: 'limit=1' })).body.items).toHaveLength(1);
    expect((await call('listSubjects', { query: 'limit=0' })).status).toBe(400);
    expect((await call('getSubject', { params: { id: 'acme' } })).body.metadata).toEqual({ tier: 'gold' });
    expect((await call('getSubject', { params: { id: 'nobody' } })).body.code).toBe('subject_not_found');
    expect((await call('setSubjectPlan', { params: { id: 'acme' }, body: { plan: 'pro' } })).body.plan).toBe('pro');
    expect((await call('setSubjectPlan', { params: { id: 'acme' }, body: { plan: 'gold' } })).status).toBe(400);
    expect((await call('setSubjectPlan', { params: { id: 'nobody' }, body: { plan: 'pro' } })).status).toBe(404);
    const overrides = { limits: { hour: 500 }, quotas: { search: { day: 7 } } };
    expect((await call('setSubjectOverrides', { params: { id: 'acme' }, body: { overrides } })).body.overrides).toEqual(overrides);
    expect((await call('setSubjectOverrides', { params: { id: 'acme' }, body: {} })).status).toBe(400);
    expect((await call('setSubjectOverrides', { params: { id: 'nobody' }, body: { overrides: null } })).status).toBe(404);
    expect((await call('suspendSubject', { params: { id: 'acme' } })).body.suspended_at).toEqual(expect.any(String));
    expect((await call('suspendSubject', { params: { id: 'nobody' } })).status).toBe(404);
    expect((await call('reactivateSubject', { params: { id: 'acme' } })).body.suspended_at).toBeNull();
    expect((await call('reactivateSubject', { params: { id: 'nobody' } })).status).toBe(404);
  });

  it('keys: create (within max_keys), list, rotate, revoke, and their refusals', async () => {
    expect((await call('createSubject', { body: { id: 'keys-co', plan: 'small' } })).status).toBe(201);
    const created = await call('createKey', { params: { id: 'keys-co' }, body: { name: 'ci', scopes: ['read'], expires_at: '2027-01-01T00:00:00Z' } });
    expect(created.status).toBe(201);
    expect((await call('createKey', { params: { id: 'keys-co' }, body: {} })).body).toMatchObject({ code: 'max_keys_reached', max_keys: 1, live_keys: 1 });
    expect((await call('createKey', { params: { id: 'keys-co' }, body: { name: '' } })).status).toBe(400);
    expect((await call('createKey', { params: { id: 'nobody' }, body: {} })).status).toBe(404);
    expect((await call('listKeys', { params: { id: 'keys-co' } })).body.items.map((key: { id: string }) => key.id)).toEqual([created.body.id]);
    expect((await call('listKeys', { params: { id: 'nobody' } })).status).toBe(404);
    const rotated = await call('rotateKey', { params: { keyId: created.body.id }, body: { grace_ms: 60_000 } });
    expect(rotated.body.replaced.id).toBe(created.body.id);
    expect((await call('rotateKey', { params: { keyId: created.body.id }, body: {} })).body.reason).toBe('already_rotated');
    expect((await call('rotateKey', { params: { keyId: rotated.body.id }, body: { grace_ms: -1 } })).status).toBe(400);
    expect((await call('rotateKey', { params: { keyId: 'k_nope' } })).body.code).toBe('key_not_found');
    expect((await call('revokeKey', { params: { keyId: rotated.body.id } })).body.revoked_at).toEqual(expect.any(String));
    expect((await call('revokeKey', { params: { keyId: 'k_nope' } })).status).toBe(404);
  });

  it('usage, reset, credits and the audit log', async () => {
    expect((await call('getSubjectUsage', { params: { id: 'acme' } })).body.policies.map((p: { name: string }) => p.name)).toEqual(['hour', 'search.day']);
    expect((await call('getSubjectUsage', { params: { id: 'nobody' } })).status).toBe(404);
    expect((await call('getSubjectUsageHistory', { params: { id: 'acme' }, query: 'granularity=month' })).body.items).toEqual([]);
    expect((await call('getSubjectUsageHistory', { params: { id: 'acme' }, query: 'granularity=week' })).status).toBe(400);
    expect((await call('getSubjectUsageHistory', { params: { id: 'nobody' } })).status).toBe(404);
    expect((await call('resetSubjectUsage', { params: { id: 'acme' } })).body.reset).toEqual(['hour', 'search.day']);
    expect((await call('resetSubjectUsage', { params: { id: 'nobody' } })).status).toBe(404);
    expect((await call('grantCredits', { params: { id: 'acme' }, body: { metric: 'search', amount: 10, reason: 'goodwill' } })).status).toBe(201);
    expect((await call('grantCredits', { params: { id: 'acme' }, body: { metric: 'uploads', amount: 0 } })).body.errors).toHaveLength(2);
    expect((await call('grantCredits', { params: { id: 'nobody' }, body: { metric: 'search', amount: 1 } })).status).toBe(404);
    const audit = await call('listAuditEntries', { query: 'subject=acme&limit=2' });
    expect(audit.body.items).toHaveLength(2);
    expect(audit.body.next_cursor).toEqual(expect.any(String));
    expect((await call('listAuditEntries', { query: 'from=yesterday' })).status).toBe(400);
  });

  it('events: list (filtered, paged) and redeliver, and their refusals', async () => {
    // Recorded as the webhook deliverer records what it takes from the outbox.
    const db = connectTestDatabase(database.url);
    try {
      await db.transaction((tx) =>
        recordQuotaEvents(tx, [
          { event: { id: 'evt_th_1', type: 'quota.threshold', timestampMs: Date.UTC(2026, 5, 1), data: { subject: 'acme', threshold: 80 } }, endpoints: ['billing'] },
          { event: { id: 'evt_ex_1', type: 'quota.exhausted', timestampMs: Date.UTC(2026, 5, 2), data: { subject: 'acme' } }, endpoints: [] },
        ]),
      );
    } finally {
      await db.close();
    }
    const page = await call('listEvents', { query: 'subject=acme&limit=1' });
    expect(page.body.items.map((item: { id: string }) => item.id)).toEqual(['evt_ex_1']);
    const next = await call('listEvents', { query: `subject=acme&limit=1&cursor=${encodeURIComponent(page.body.next_cursor)}` });
    expect(next.body.items[0]).toMatchObject({ id: 'evt_th_1', status: 'pending', deliveries: [{ endpoint: 'billing', status: 'pending', attempts: 0 }] });
    expect((await call('listEvents', { query: 'status=recorded' })).body.items.map((item: { id: string }) => item.id)).toEqual(['evt_ex_1']);
    expect((await call('listEvents', { query: 'type=quota.warning&cursor=x' })).body.errors).toHaveLength(2);
    const redelivered = await call('redeliverEvent', { params: { id: 'evt_th_1' } });
    expect(redelivered.status).toBe(202);
    expect(redelivered.body.deliveries).toMatchObject([{ endpoint: 'billing', status: 'pending', attempts: 0 }]);
    expect((await call('listAuditEntries', { query: 'target=event:evt_th_1' })).body.items[0]).toMatchObject({ action: 'event.redeliver', subject: 'acme' });
    expect((await call('redeliverEvent', { params: { id: 'evt_nope' } })).body.code).toBe('event_not_found');
  });

  it('operator views and unblocking, and their refusals', async () => {
    expect((await call('listNearLimits', { query: 'threshold=80' })).body.items).toEqual([]);
    expect((await call('listNearLimits', { query: 'threshold=0' })).status).toBe(400);
    expect((await call('listTopConsumers', { query: 'policy=month&period=current' })).body.items).toEqual([]);
    expect((await call('listTopConsumers', { query: 'policy=week' })).status).toBe(400);
    expect((await call('listDenials', { query: 'window=1h' })).body.items).toEqual([]);
    expect((await call('listDenials', { query: 'window=2d' })).status).toBe(400);
    expect((await call('unblockSubject', { params: { id: 'acme' } })).body).toEqual({ subject: 'acme', was_blocked: false });
  });

  it('usage and reset answer 503 usage_unavailable (with Retry-After) when the limit store does not answer', async () => {
    expect((await call('getSubjectUsage', { params: { id: 'acme' }, target: storeDown })).body.code).toBe('usage_unavailable');
    expect((await call('resetSubjectUsage', { params: { id: 'acme' }, target: storeDown })).status).toBe(503);
  });

  it('answers every operation that takes a body 413 payload_too_large for one over 64 KiB', async () => {
    const large = { name: 'x'.repeat(70 * 1024) };
    const withBodies = [...spec.operations.values()].filter((operation) => operation.statuses.includes('413'));
    expect(withBodies.map((operation) => operation.operationId).sort()).toEqual(
      ['createKey', 'createSubject', 'grantCredits', 'rotateKey', 'setSubjectOverrides', 'setSubjectPlan'],
    );
    for (const operation of withBodies) {
      const res = await call(operation.operationId, { params: ANY_PARAMS, body: large });
      expect(res.body, operation.operationId).toMatchObject({ code: 'payload_too_large', max_body_bytes: 65536 });
    }
  });

  it('answers every operation that needs the database 503 database_unavailable (with Retry-After) while it is down', async () => {
    const validBodies: Record<string, unknown> = {
      createSubject: { id: 'acme', plan: 'small' },
      setSubjectPlan: { plan: 'pro' },
      setSubjectOverrides: { overrides: null },
      grantCredits: { metric: 'search', amount: 1 },
    };
    const needingDatabase = [...spec.operations.values()].filter((operation) => operation.statuses.includes('503'));
    expect(needingDatabase.map((operation) => operation.operationId)).not.toContain('reloadConfig');
    for (const operation of needingDatabase) {
      const body = validBodies[operation.operationId] ?? (operation.method === 'GET' || operation.method === 'DELETE' ? undefined : {});
      const res = await call(operation.operationId, { params: ANY_PARAMS, target: databaseDown, body });
      expect(res.body.code, operation.operationId).toBe('database_unavailable');
    }
  }, 60_000); // each operation may wait out connect_timeout_ms and the pool's retries: all of them together can take longer than the default 20 s

  it('deletes a subject (204, then 404)', async () => {
    expect((await call('deleteSubject', { params: { id: 'acme' } })).status).toBe(204);
    expect((await call('deleteSubject', { params: { id: 'acme' } })).status).toBe(404);
  });

  it('reloads: 200 for a valid file, 422 for an invalid one, 409 for a change that needs a restart', async () => {
    expect((await call('reloadConfig')).body).toEqual({ status: 'reloaded', routes: 1, plans: 3, upstreams: 1 });
    writeFileSync(configFile, configText.replace('small: { limits: { minute: 30,', 'small: { limits: { minute: 0,'));
    expect((await call('reloadConfig')).body).toMatchObject({ status: 'rejected', reason: 'invalid' });
    writeFileSync(configFile, configText.replace('drain_timeout_ms: 2000', 'drain_timeout_ms: 2000\nlogging:\n  level: debug'));
    expect((await call('reloadConfig')).body).toMatchObject({ status: 'rejected', reason: 'needs_restart' });
    writeFileSync(configFile, configText);
    expect((await call('reloadConfig')).status).toBe(200);
  });

  it('saw every operation of the document answer with every status it documents', () => {
    expect(spec.unseen()).toEqual([]);
  });
});

