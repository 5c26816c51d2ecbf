import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/core/api-key.js';
import { counterKey } from '../../src/redis/keys.js';
import { metricSample } from '../support/admin-probe.js';
import { REPOSITORY_ROOT } from '../support/command-process.js';
import { type GatewayProcess, startGatewayProcess } from '../support/gateway-process.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { infoField, type SentinelGroup, startSentinelGroup } from '../support/redis-sentinel.js';
import { redisCli } from '../support/redis-server.js';
import { eventually, eventuallyAsync, within } from '../support/within.js';

/**
 * `store.redis.sentinel` against real processes: a master, its replica and
 * three redis-sentinel (test/support/redis-sentinel.ts), and a gateway
 * process (`quotagate serve`) that finds the master through the sentinels.
 * `SENTINEL FAILOVER` promotes the replica while four clients keep sending.
 *
 * What is asserted, and why:
 * - every request is answered (each is bounded to 5 s: a hang fails), with
 *   200, or 503 `store_unavailable` while the master changes (the route is
 *   `on_store_error: closed`); never a 500;
 * - decisions go on through the new master, which never had the scripts
 *   (Redis 7 replicates a script's effects, not the script). ioredis sends
 *   a script with EVAL on each new connection, so the consume calls on the
 *   connections made after the failover meet no NOSCRIPT; the readiness
 *   probe's EVALSHA of lua/probe.lua does (and sends EVAL). Then, to make
 *   consume calls meet NOSCRIPT on the new master too, its script cache is
 *   flushed under the open connections: every request is still admitted,
 *   and the script is back in its cache;
 * - counters carry over by replication. Exactly for a subject idle during
 *   the failover: its 40 charges, seen on the replica before, continue on
 *   the new master (exactly 60 more of its 100 are admitted, then 429).
 *   Within bounds for the subject under load: Redis replicates
 *   asynchronously, so charges the old master took after its last
 *   replicated write, or before it was told it is a replica, are lost
 *   (Redis's documented window); its counter on the new master is at least
 *   what the replica held just before the failover and at most what was
 *   admitted. The usage ledger is not flushed during the test (10 min
 *   interval) and Redis is never found emptied, so only replication can
 *   have carried the counts.
 */

const KEY_PREFIX = 'qgsentinel';
const LOADED_SUBJECT = 'sentinel-loaded';
const IDLE_SUBJECT = 'sentinel-idle';
const IDLE_LIMIT = 100;
const IDLE_BEFORE = 40;
const CLIENTS = 4;
const REQUEST_BOUND_MS = 5_000;

/** The SHA-1 ioredis sends a lua/ script by. */
const shaOfScript = (file: string) => createHash('sha1').update(readFileSync(join(REPOSITORY_ROOT, 'lua', file), 'utf8')).digest('hex');

/** `errorstat_NOSCRIPT` of an `INFO errorstats` text (0 when absent). */
const noscriptErrors = (errorstats: string) => Number(/^errorstat_NOSCRIPT:count=(\d+)/m.exec(errorstats)?.[1] ?? 0);

interface Answer {
  readonly status: number;
  readonly code: string | undefined;
  /** Set when the request was not answered within REQUEST_BOUND_MS or failed at the socket. */
  readonly error?: string;
}

describe('Redis Sentinel: a failover under load', () => {
  let group: SentinelGroup;
  let upstream: RecordingUpstream;
  let gateway: GatewayProcess;
  const loadedKey = generateApiKey('qg');
  const idleKey = generateApiKey('qg');

  beforeAll(async () => {
    [group, upstream] = await Promise.all([startSentinelGroup(), startRecordingUpstream({ reply: { body: 'ok' } })]);
    gateway = await startGatewayProcess(`
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
store:
  type: redis
  redis:
    sentinel: { master_name: ${group.masterName}, sentinels: [${group.sentinels.map((s) => `"${s}"`).join(', ')}] }
    key_prefix: ${KEY_PREFIX}
    command_timeout_ms: 1000
    connect_timeout_ms: 2000
upstreams:
  app: { url: ${upstream.origin} }
routes:
  - { name: strict, path_prefix: /, upstream: app, on_store_error: closed }
auth:
  api_keys:
    keys:
      - { id: loaded-key, hash: ${hashApiKey(loadedKey)}, subject: ${LOADED_SUBJECT}, plan: big }
      - { id: idle-key, hash: ${hashApiKey(idleKey)}, subject: ${IDLE_SUBJECT}, plan: hundred }
plans:
  big: { limits: { month: 100000000 } }
  hundred: { limits: { month: ${IDLE_LIMIT} } }
usage: { flush_interval_ms: 600000 }
`);
  }, 120_000);

  afterAll(async () => {
    if (gateway !== undefined && gateway.child.exitCode === null) {
      gateway.child.kill('SIGKILL');
      await within(gateway.exited, 10_000, 'the gateway to exit').catch(() => undefined);
    }
    await Promise.allSettled([upstream?.close(), group?.stop()]);
  }, 60_000);

  const send = async (key: string): Promise<Answer> => {
    try {
      return await within(
        (async () => {
          const res = await request(`${gateway.proxyUrl}/x`, { headers: { 'x-api-key': key } });
          const text = await res.body.text();
          const code = text.startsWith('{') ? (JSON.parse(text) as { code?: string }).code : undefined;
          return { status: res.statusCode, code };
        })(),
        REQUEST_BOUND_MS,
        'a proxied request',
      );
    } catch (error) {
      return { status: 0, code: undefined, error: (error as Error).message };
    }
  };

  const metricsText = () => within(request(`${gateway.adminUrl}/metrics`).then((res) => res.body.text()), 5_000, 'GET /metrics');

  const counterOn = async (port: number, subject: string) =>
    Number((await redisCli(port, 'HGET', counterKey(KEY_PREFIX, subject, 'w:month'), 'n')) || '0');

  it('decides through the master the sentinels name, and the replica holds the counts', async () => {
    const [master, replica] = group.nodes as [(typeof group.nodes)[0], (typeof group.nodes)[0]];
    expect(await group.masterPort()).toBe(master.port);
    const answers: Answer[] = [];
    for (let i = 0; i < IDLE_BEFORE; i++) answers.push(await send(idleKey));
    expect(answers.filter((answer) => answer.status !== 200)).toEqual([]);
    expect(upstream.requests).toHaveLength(IDLE_BEFORE);
    expect(await counterOn(master.port, IDLE_SUBJECT)).toBe(IDLE_BEFORE);
    await eventuallyAsync(async () => (await counterOn(replica.port, IDLE_SUBJECT)) === IDLE_BEFORE, 10_000, 'the counts on the replica');
  });

  it('answers every request during SENTINEL FAILOVER (no 500, no hang), continues on the new master after NOSCRIPT, and carries the counters over', async () => {
    const [oldMaster, promoted] = group.nodes as [(typeof group.nodes)[0], (typeof group.nodes)[0]];
    const [consumeSha, probeSha] = ['consume.lua', 'probe.lua'].map(shaOfScript) as [string, string];
    // Neither script reached the replica, though the master has run both.
    expect(await redisCli(oldMaster.port, 'SCRIPT', 'EXISTS', consumeSha, probeSha)).toBe('1\n1');
    expect(await redisCli(promoted.port, 'SCRIPT', 'EXISTS', consumeSha, probeSha)).toBe('0\n0');
    await redisCli(promoted.port, 'CONFIG', 'RESETSTAT');

    const answers: Answer[] = [];
    let switchedAt: number | undefined;
    let running = true;
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (running) answers.push(await send(loadedKey));
    });
    let replicatedBefore = 0;
    try {
      await eventually(() => answers.length >= 50, 20_000, 'load before the failover');
      replicatedBefore = await counterOn(promoted.port, LOADED_SUBJECT);
      expect(replicatedBefore).toBeGreaterThan(0);
      expect(await redisCli(group.sentinelPorts[0]!, 'SENTINEL', 'FAILOVER', group.masterName)).toBe('OK');
      await eventuallyAsync(async () => (await group.masterPort()) === promoted.port, 30_000, 'the sentinels to name the replica master');
      // The old master takes writes until the sentinels make it a replica of the new one.
      await eventuallyAsync(
        async () => infoField(await redisCli(oldMaster.port, 'INFO', 'replication'), 'master_port') === String(promoted.port),
        20_000,
        'the old master to replicate from the new one',
      );
      switchedAt = answers.length;
      // Decisions go on: 30 admissions once the old master is a replica, i.e. through the new master.
      await eventually(() => answers.slice(switchedAt).filter((answer) => answer.status === 200).length >= 30, 30_000, 'admissions after the failover');
    } finally {
      running = false;
      await Promise.all(clients);
    }

    // Every request answered, none with a 500: 200, or 503 store_unavailable while the master changed.
    expect(answers.filter((answer) => answer.status === 0)).toEqual([]);
    expect(answers.filter((answer) => answer.status !== 200 && !(answer.status === 503 && answer.code === 'store_unavailable'))).toEqual([]);
    expect(gateway.child.exitCode).toBeNull();

    // The promoted node is the master, the old one its replica.
    expect(infoField(await redisCli(promoted.port, 'INFO', 'replication'), 'role')).toBe('master');
    expect(infoField(await redisCli(oldMaster.port, 'INFO', 'replication'), 'role')).toBe('slave');

    // The new master met NOSCRIPT (the probe's EVALSHA) and now holds both scripts; no call failed on a script.
    expect(noscriptErrors(await redisCli(promoted.port, 'INFO', 'errorstats'))).toBeGreaterThan(0);
    expect(await redisCli(promoted.port, 'SCRIPT', 'EXISTS', consumeSha, probeSha)).toBe('1\n1');
    const storeErrorKinds = [...(await metricsText()).matchAll(/^quotagate_store_errors_total\{store="redis",kind="(\w+)"\} [1-9]/gm)].map((m) => m[1]);
    expect(storeErrorKinds.filter((kind) => !['connection', 'circuit_open', 'timeout', 'connection_retired', 'readonly'].includes(kind!))).toEqual([]);

    // The loaded subject's counter continued from what the replica held (async replication may lose the last charges).
    const admitted = answers.filter((answer) => answer.status === 200).length;
    const carried = await counterOn(promoted.port, LOADED_SUBJECT);
    expect(carried).toBeGreaterThanOrEqual(replicatedBefore);
    expect(carried).toBeLessThanOrEqual(admitted);
    // ...and each decision now charges the new master: 20 requests, 20 more on its counter.
    const more: Answer[] = [];
    for (let i = 0; i < 20; i++) more.push(await send(loadedKey));
    expect(more.filter((answer) => answer.status !== 200)).toEqual([]);
    expect(await counterOn(promoted.port, LOADED_SUBJECT)).toBe(carried + 20);

    // Consume calls meeting NOSCRIPT on the new master, on connections that had loaded the script: each is resent as EVAL.
    expect(await redisCli(promoted.port, 'SCRIPT', 'FLUSH')).toBe('OK');
    const noscriptBefore = noscriptErrors(await redisCli(promoted.port, 'INFO', 'errorstats'));
    const afterFlush: Answer[] = [];
    for (let i = 0; i < 10; i++) afterFlush.push(await send(loadedKey));
    expect(afterFlush.filter((answer) => answer.status !== 200)).toEqual([]);
    expect(noscriptErrors(await redisCli(promoted.port, 'INFO', 'errorstats'))).toBeGreaterThan(noscriptBefore);
    expect(await redisCli(promoted.port, 'SCRIPT', 'EXISTS', consumeSha)).toBe('1');
    expect(await counterOn(promoted.port, LOADED_SUBJECT)).toBe(carried + 30);

    // The idle subject's counter carried over exactly: 60 more of its 100, then 429.
    expect(await counterOn(promoted.port, IDLE_SUBJECT)).toBe(IDLE_BEFORE);
    const after: Answer[] = [];
    while (after.length <= IDLE_LIMIT && after.at(-1)?.status !== 429) after.push(await send(idleKey));
    expect(after.filter((answer) => answer.status === 200)).toHaveLength(IDLE_LIMIT - IDLE_BEFORE);
    expect(after.at(-1)).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(after).toHaveLength(IDLE_LIMIT - IDLE_BEFORE + 1);

    // Carried by replication, not restored from the ledger: Redis was never found emptied.
    expect(await metricSample(gateway.adminUrl, 'quotagate_redis_emptied_total')).toBe(0);
  }, 120_000);
});
