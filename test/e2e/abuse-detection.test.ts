import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/core/api-key.js';
import { decodeStreamEntry, type QuotaEvent } from '../../src/core/quota-events.js';
import { eventStreamKey, subjectBlockKey } from '../../src/redis/keys.js';
import { type GatewayProcess, startGatewayProcess } from '../support/gateway-process.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { eventuallyAsync, within } from '../support/within.js';

/**
 * Denial spikes across a fleet: gateway processes sharing one Redis (and one
 * PostgreSQL) count each subject's denials per minute together; the sixth
 * denial of a minute raises exactly one `subject.denial_spike`, however the
 * denials were spread; `action: block` refuses the subject at every
 * instance (a process started after the block too) with 403
 * `subject_blocked` and Retry-After, audited, until the admin API lifts it.
 */
const REDIS_URL = 'redis://127.0.0.1:6379';
const TOKEN_ENV = 'QG_ABUSE_TEST_ADMIN_TOKEN';
const TOKEN = 'abuse-test-admin-token-5b0d2f6e91c4a7d3';

function gatewayYaml(options: { upstreamOrigin: string; keyPrefix: string; databaseUrl: string; keys: Record<string, string> }): string {
  return `
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
admin: { token_env: ${TOKEN_ENV} }
store:
  type: redis
  redis: { url: "${REDIS_URL}", key_prefix: ${options.keyPrefix}, command_timeout_ms: 2000 }
postgres:
  url: "${options.databaseUrl}"
upstreams:
  app: { url: ${options.upstreamOrigin} }
routes:
  - { name: metered, path_prefix: /metered, upstream: app, quota: calls }
  - { name: api, path_prefix: /, upstream: app }
auth:
  api_keys:
    keys:
      - { id: k-noisy, hash: ${hashApiKey(options.keys.noisy!)}, subject: noisy, plan: watched }
      - { id: k-spiky, hash: ${hashApiKey(options.keys.spiky!)}, subject: spiky, plan: guarded }
plans:
  watched:
    limits: { hour: 1000 }
    quotas: { calls: { minute: 1 } }
    abuse: { denials_per_minute: 5 }
  guarded:
    limits: { hour: 1000 }
    quotas: { calls: { minute: 1 } }
    abuse: { denials_per_minute: 5, action: block, block_seconds: 600 }
logging: { level: info }
`;
}

describe('denial spikes across gateway processes sharing Redis', () => {
  const keyPrefix = testKeyPrefix('abuse');
  const keys = { noisy: generateApiKey('qg'), spiky: generateApiKey('qg') };
  let upstream: RecordingUpstream;
  let database: TestDatabase;
  let redis: Redis;
  let yaml: string;
  const gateways: GatewayProcess[] = [];

  const send = async (gateway: GatewayProcess, key: string, path: string): Promise<Response> => {
    const res = await within(fetch(`${gateway.proxyUrl}${path}`, { headers: { 'x-api-key': key } }), 5_000, 'a proxied request');
    await res.arrayBuffer();
    return res;
  };
  const admin = async (gateway: GatewayProcess, path: string, method = 'GET') => {
    const res = await fetch(`${gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & { items?: Array<Record<string, unknown>> } };
  };
  const spikeEvents = async (subject: string): Promise<QuotaEvent[]> => {
    const entries = await redis.xrange(eventStreamKey(keyPrefix), '-', '+');
    return entries
      .map(([, fields]) => decodeStreamEntry(fields))
      .filter((event): event is QuotaEvent => event?.type === 'subject.denial_spike' && event.data.subject === subject);
  };
  /** Waits, if need be, for a minute with at least 15 s left: a burst must not straddle two minutes. */
  const awaitRoomInMinute = async () => {
    const intoMinuteMs = Date.now() % 60_000;
    if (intoMinuteMs > 45_000) await new Promise((resolve) => setTimeout(resolve, 60_500 - intoMinuteMs));
  };

  beforeAll(async () => {
    process.env[TOKEN_ENV] = TOKEN;
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    database = await createTestDatabase();
    redis = new Redis(REDIS_URL);
    yaml = gatewayYaml({ upstreamOrigin: upstream.origin, keyPrefix, databaseUrl: database.url, keys });
    for (let i = 0; i < 2; i++) gateways.push(await startGatewayProcess(yaml));
  }, 120_000);

  afterAll(async () => {
    for (const gateway of gateways) gateway.child.kill('SIGKILL');
    await Promise.allSettled(gateways.map((gateway) => gateway.exited));
    await upstream?.close();
    await deleteKeysWithPrefix(redis, keyPrefix);
    redis?.disconnect();
    await database?.drop();
    delete process.env[TOKEN_ENV];
  });

  it('raises exactly one subject.denial_spike for 6 denials in a minute spread over two instances, and none again that minute', async () => {
    await awaitRoomInMinute();
    const [a, b] = [gateways[0]!, gateways[1]!];
    const statuses: number[] = [];
    // 1 admitted, then 6 denials: 3 at each instance.
    for (const gateway of [a, a, b, a, b, a, b]) statuses.push((await send(gateway, keys.noisy, '/metered')).status);
    expect(statuses).toEqual([200, 429, 429, 429, 429, 429, 429]);
    await eventuallyAsync(async () => (await spikeEvents('noisy')).length > 0, 10_000, 'the denial spike event');
    // More denials in the same minute, at both: the spike was raised once.
    for (const gateway of [a, b, a, b]) expect((await send(gateway, keys.noisy, '/metered')).status).toBe(429);
    await new Promise((resolve) => setTimeout(resolve, 2_500)); // two flushes of each instance
    const events = await spikeEvents('noisy');
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({ subject: 'noisy', plan: 'watched', denials: 6, threshold: 5, action: 'notify', blocked_until: null });
    expect(events[0]!.id).toMatch(/^denial_spike:[0-9a-f]{24}:\d+$/);
    // notify does not block.
    expect((await send(b, keys.noisy, '/')).status).toBe(200);
    // Both instances' denials reach the denials view.
    await eventuallyAsync(async () => (await admin(a, '/admin/views/denials?subject=noisy')).body.items?.[0]?.denials === 10, 10_000, 'the 10 denials in the view');
  }, 90_000);

  it('blocks a spiking subject at every instance with 403 subject_blocked and Retry-After, a new instance too, until the admin API lifts it', async () => {
    await awaitRoomInMinute();
    const [a, b] = [gateways[0]!, gateways[1]!];
    const statuses: number[] = [];
    for (const gateway of [a, a, a, a, b, b, b]) statuses.push((await send(gateway, keys.spiky, '/metered')).status);
    expect(statuses).toEqual([200, 429, 429, 429, 429, 429, 429]);
    // The other instance refuses it on every route once the block is broadcast.
    await eventuallyAsync(async () => (await send(a, keys.spiky, '/')).status === 403, 10_000, 'the block at instance a');
    const forwardedOf = () => upstream.requests.filter((r) => r.headers['x-quotagate-subject'] === 'spiky').length;
    const forwarded = forwardedOf();
    const refused = await send(b, keys.spiky, '/');
    expect(refused.status).toBe(403);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(590);
    expect(retryAfter).toBeLessThanOrEqual(600);
    expect(await redis.pttl(subjectBlockKey(keyPrefix, 'spiky'))).toBeGreaterThan(590_000);
    const body = (await (await fetch(`${b.proxyUrl}/`, { headers: { 'x-api-key': keys.spiky } })).json()) as { blocked_until: string };
    expect(body).toMatchObject({ status: 403, code: 'subject_blocked', blocked_until: expect.any(String) });
    expect(forwardedOf()).toBe(forwarded);
    const [event] = await spikeEvents('spiky');
    expect(event?.data).toMatchObject({ subject: 'spiky', plan: 'guarded', denials: 6, action: 'block', blocked_until: body.blocked_until });
    // Audited, once, by the instance that saw the spike.
    const audit = await admin(a, '/admin/audit?subject=spiky');
    expect(audit.body.items?.map((entry) => [entry.action, entry.actor])).toEqual([['subject.block', 'gateway:abuse']]);

    // An instance started after the block learns it at start.
    gateways.push(await startGatewayProcess(yaml));
    const c = gateways[2]!;
    expect((await send(c, keys.spiky, '/')).status).toBe(403);
    expect(forwardedOf()).toBe(forwarded);

    // Lifted through one instance's admin API: admitted again at every instance.
    expect(await admin(b, '/admin/subjects/spiky/block', 'DELETE')).toEqual({ status: 200, body: { subject: 'spiky', was_blocked: true } });
    for (const gateway of [a, b, c]) {
      await eventuallyAsync(async () => (await send(gateway, keys.spiky, '/')).status === 200, 10_000, 'the unblock at every instance');
    }
    expect(await redis.exists(subjectBlockKey(keyPrefix, 'spiky'))).toBe(0);
    expect((await admin(a, '/admin/subjects/spiky/block', 'DELETE')).body).toEqual({ subject: 'spiky', was_blocked: false });
    const actions = (await admin(a, '/admin/audit?subject=spiky')).body.items?.map((entry) => entry.action);
    expect(actions).toEqual(['subject.unblock', 'subject.unblock', 'subject.block']);
  }, 150_000);
});
