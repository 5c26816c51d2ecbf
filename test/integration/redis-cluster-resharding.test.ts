import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { counterKey } from '../../src/redis/keys.js';
import { metricSample, readyz } from '../support/admin-probe.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { type RedisCluster, startRedisCluster } from '../support/redis-cluster.js';
import { startTestGateway, testConfig, TEST_KEY, type TestGateway } from '../support/test-gateway.js';
import { eventually, within } from '../support/within.js';

/** The subject TEST_KEY belongs to (test-gateway.ts), and its plan's counters. */
const SUBJECT = 'customer-1';
const COUNTERS = ['w:minute', 'w:hour', 'w:day', 'w:month'];
/** Pause between moving two keys: the subject's keys stay split between the nodes this long (TRYAGAIN). */
const PAUSE_BETWEEN_KEYS_MS = 50;

/** Every field of `INFO errorstats`: `{ ASK: 3, TRYAGAIN: 5, … }`. */
async function errorstats(node: Redis): Promise<Record<string, number>> {
  const info = await node.info('errorstats');
  return Object.fromEntries([...info.matchAll(/^errorstat_(\w+):count=(\d+)/gm)].map(([, name, count]) => [name!, Number(count)]));
}

/**
 * A slot migration on a real 3-primary Redis Cluster, done by hand as
 * `redis-cli --cluster reshard` does it (SETSLOT IMPORTING/MIGRATING, MIGRATE
 * key by key, SETSLOT NODE), of the very slot a subject under load lives in.
 * ASK, MOVED and TRYAGAIN are normal Cluster operation: no request may fail.
 */
describe('a Redis Cluster resharding the slot of a subject under load', () => {
  let cluster: RedisCluster | undefined;
  let upstream: RecordingUpstream | undefined;
  let gw: TestGateway | undefined;
  const nodes: Redis[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    for (const port of cluster.ports) nodes.push(new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 }));
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: '  - { name: strict, path_prefix: /strict, upstream: app, on_store_error: closed }',
        plans: '  small: { limits: { minute: 100000000, hour: 100000000, day: 100000000, month: 100000000 } }',
        // A fresh ioredis Cluster client has taken seconds to become ready on a loaded machine.
        extra: `store:
  type: redis
  redis: { cluster: { nodes: [${cluster.nodes.map((node) => `"${node}"`).join(', ')}] }, command_timeout_ms: 1000, connect_timeout_ms: 20000 }
`,
      }),
    );
  }, 90_000);

  afterAll(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
    for (const node of nodes) node.disconnect();
    await cluster?.stop();
  }, 30_000);

  it('answers every request with 200 while the slot moves, with no ERR in the nodes’ error stats', async () => {
    const gateway = gw!;
    const call = () =>
      within(
        request(`${gateway.proxyUrl}/strict`, { headers: { 'x-api-key': TEST_KEY } }).then(async (res) => ({
          status: res.statusCode,
          body: await res.body.text(),
        })),
        5_000,
        'GET /strict',
      ).catch((error: Error) => ({ status: 0, body: error.message }));
    expect((await call()).status).toBe(200);

    const keys = COUNTERS.map((counterId) => counterKey('qg', SUBJECT, counterId));
    const slot = Number(await nodes[0]!.cluster('KEYSLOT', keys[0]!));
    const ids = await Promise.all(nodes.map((node) => node.cluster('MYID') as Promise<string>));
    // The subject's counters and its charge records (a hash a minute) live in its slot.
    const counts = await Promise.all(nodes.map((node) => node.cluster('COUNTKEYSINSLOT', slot) as Promise<number>));
    const from = counts.findIndex((count) => count > 0);
    expect(await nodes[from]!.exists(...keys)).toBe(keys.length);
    expect(from).toBeGreaterThanOrEqual(0);
    const to = (from + 1) % nodes.length;
    const [source, target] = [nodes[from]!, nodes[to]!];
    for (const node of nodes) await node.config('RESETSTAT');

    const answers: Array<{ status: number; body: string }> = [];
    let running = true;
    const workers = Array.from({ length: 4 }, async () => {
      while (running) answers.push(await call());
    });
    try {
      await eventually(() => answers.length >= 20, 10_000, 'load before the migration');
      const before = answers.length;
      await target.cluster('SETSLOT', slot, 'IMPORTING', ids[from]!);
      await source.cluster('SETSLOT', slot, 'MIGRATING', ids[to]!);
      const targetPort = cluster!.ports[to]!;
      for (;;) {
        const batch = (await source.cluster('GETKEYSINSLOT', slot, 1)) as string[];
        if (batch.length === 0) break;
        await source.migrate('127.0.0.1', targetPort, '', 0, 5_000, 'KEYS', ...batch);
        await new Promise((resolve) => setTimeout(resolve, PAUSE_BETWEEN_KEYS_MS));
      }
      // Target first, then the source, then the others, as redis-cli does.
      for (const node of [target, source, ...nodes.filter((n) => n !== source && n !== target)]) {
        await node.cluster('SETSLOT', slot, 'NODE', ids[to]!);
      }
      const migrated = answers.length;
      await eventually(() => answers.length >= migrated + 20, 10_000, 'load after the migration');
      expect(migrated - before).toBeGreaterThan(0);
    } finally {
      running = false;
      await Promise.all(workers);
    }

    expect(answers.filter((answer) => answer.status !== 200)).toEqual([]);
    expect(await metricSample(gateway.adminUrl, 'quotagate_store_errors_total{store="redis",kind="redirection"}')).toBeUndefined();
    expect(await source.cluster('COUNTKEYSINSLOT', slot)).toBe(0);
    expect(await target.exists(...keys)).toBe(keys.length);

    const stats = await Promise.all(nodes.map(errorstats));
    // The migration did reach the requests: redirected and asked to try again...
    expect(stats[from]!.ASK ?? 0).toBeGreaterThan(0);
    expect(stats[from]!.TRYAGAIN ?? 0).toBeGreaterThan(0);
    // ...and nothing else failed: no ERR (once two per new connection, CLIENT SETINFO on Redis < 7.2).
    expect(stats.map((s) => s.ERR ?? 0)).toEqual([0, 0, 0]);
    expect((await readyz(gateway.adminUrl)).status).toBe(200);
  }, 60_000);
});
