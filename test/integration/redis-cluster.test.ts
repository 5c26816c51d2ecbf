import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { windowPolicy, quotaPolicy } from '../../src/core/policy.js';
import { RedisLimiter } from '../../src/limiter/redis-limiter.js';
import { loadMigrations, migrate } from '../../src/db/migrations.js';
import { IN_MEMORY, PgliteDatabase } from '../../src/db/pglite-database.js';
import { clusterSlotOf } from '../../src/redis/cluster-slots.js';
import { DatabaseUsageLedger } from '../../src/usage/database-ledger.js';
import { closeRedisClient, createRedisClient, type RedisClient, waitUntilReady } from '../../src/redis/client.js';
import { limiterContract } from '../contract/limiter.contract.js';
import { quotaKindsContract } from '../contract/limiter-quota-kinds.contract.js';
import { eventsContract } from '../contract/limiter-events.contract.js';
import { readEventStream } from '../support/event-streams.js';
import { type RedisCluster, startRedisCluster } from '../support/redis-cluster.js';
import { keysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';

/** The same scripts and contract on a real 3-primary Redis Cluster, started here and stopped afterwards. */
describe('RedisLimiter on a 3-primary Redis Cluster', () => {
  const keyPrefix = testKeyPrefix('cluster');
  let cluster: RedisCluster | undefined;
  let client: RedisClient;
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    client = createRedisClient({
      cluster: { nodes: [...cluster.nodes] },
      command_timeout_ms: 2_000,
      connect_timeout_ms: 2_000,
      key_prefix: keyPrefix,
    });
    client.on('error', () => {});
    // A fresh ioredis Cluster client has taken up to ~12 s to become ready on a loaded 2-core machine.
    await waitUntilReady(client, 30_000);
  }, 90_000);
  afterAll(async () => {
    if (client !== undefined) await closeRedisClient(client);
    await cluster?.stop();
  }, 30_000);

  limiterContract('RedisLimiter (Cluster)', async (clock) => new RedisLimiter({ client, keyPrefix, nowForTesting: () => clock.now() }));
  quotaKindsContract('RedisLimiter (Cluster)', async (clock) => new RedisLimiter({ client, keyPrefix, nowForTesting: () => clock.now() }));
  eventsContract('RedisLimiter (Cluster)', async (clock) => ({
    limiter: new RedisLimiter({ client, keyPrefix, nowForTesting: () => clock.now(), events: { streamMaxLength: 10_000 } }),
    eventsOf: (subject) => readEventStream(client, keyPrefix, subject),
  }));

  it('connects through ioredis Cluster to three primaries', () => {
    expect(client).toBeInstanceOf(Cluster);
    expect((client as Cluster).nodes('master')).toHaveLength(3);
  });

  it('spreads subjects over the primaries, each subject within one slot', async () => {
    const limiter = new RedisLimiter({ client, keyPrefix, nowForTesting: () => Date.UTC(2026, 5, 15, 10, 30) });
    const policies = [windowPolicy('minute', 5), windowPolicy('hour', 50), quotaPolicy('search', 'month', 500)];
    const subjects = Array.from({ length: 24 }, (_, i) => `spread-${i}{x}`);
    const stored = { status: 201, headers: [['x-order', 'o-1']] as const, body: Buffer.from([0, 255, 10]) };
    for (const subject of subjects) {
      const request = { subject, policies, cost: 1 };
      const decision = await limiter.consumeIdempotent(request, { key: 'same', fingerprint: 'f1' });
      if (decision.kind !== 'admitted') throw new Error(`expected an admission, got ${decision.kind}`);
      if (decision.admission.receipt !== undefined) await limiter.refund(decision.admission.receipt);
      // The settle script and the replay's Buffer reply work on a cluster too.
      await limiter.completeIdempotent(decision.ticket, stored);
      expect(await limiter.consumeIdempotent(request, { key: 'same', fingerprint: 'f1' })).toEqual({ kind: 'replay', response: stored });
    }
    const keys = (await keysWithPrefix(client, keyPrefix)).filter((key) => key.includes(':{spread-'));
    // Three counters, the idempotency record and the charge record of each subject.
    expect(keys).toHaveLength(subjects.length * 5);
    const slotsBySubject = new Map<string, Set<number>>();
    for (const key of keys) {
      const subject = key.slice(key.indexOf('{') + 1, key.indexOf('}'));
      const slot = Number(await (client as Cluster).cluster('KEYSLOT', key));
      slotsBySubject.set(subject, (slotsBySubject.get(subject) ?? new Set()).add(slot));
    }
    expect([...slotsBySubject.values()].every((slots) => slots.size === 1)).toBe(true);
    const primariesHoldingKeys = await Promise.all(
      (client as Cluster).nodes('master').map(async (node) => (await node.dbsize()) > 0),
    );
    expect(primariesHoldingKeys.filter(Boolean).length).toBeGreaterThan(1);
  });

  it('lists every charged subject in its slot’s usage index, read by another instance, and unlists it once flushed', async () => {
    const db = await PgliteDatabase.open({ dataDir: IN_MEMORY });
    try {
      await migrate(db, loadMigrations());
      const ledger = new DatabaseUsageLedger(db);
      const nowForTesting = () => Date.UTC(2026, 5, 15, 10, 30);
      const charging = new RedisLimiter({ client, keyPrefix, ledger, nowForTesting });
      const subjects = Array.from({ length: 24 }, (_, i) => `indexed-${i}`);
      for (const [i, subject] of subjects.entries()) {
        const request = { subject, policies: [windowPolicy('hour', 50)], cost: 2 };
        // Every other one under an Idempotency-Key: its record is the call's last key, after the index.
        if (i % 2 === 0) expect((await charging.consume(request)).allowed).toBe(true);
        else expect((await charging.consumeIdempotent(request, { key: `k-${i}`, fingerprint: 'f' })).kind).toBe('admitted');
      }
      // The index keys share each subject's slot (consume.lua wrote both in one call), across several primaries.
      const indexKeys = (await keysWithPrefix(client, keyPrefix)).filter((key) => key.endsWith(':dirty-index'));
      const slotsOfSubjects = new Set(subjects.map((subject) => clusterSlotOf(`{${subject}}`)));
      expect(new Set(indexKeys.map((key) => clusterSlotOf(key)))).toEqual(slotsOfSubjects);

      // Another instance, which charged none of them, finds them all without a SCAN.
      const other = new RedisLimiter({ client, keyPrefix, ledger, nowForTesting });
      expect((await other.dirtySubjects(false)).sort()).toEqual([...subjects].sort());
      for (const subject of subjects) {
        const dirty = await other.readDirty(subject);
        expect(dirty?.entries.find((entry) => entry.counterId === 'w:hour')?.count).toBe(2);
        await ledger.writeUsage([dirty!]);
        expect(await other.clearDirty(dirty!)).toBe(true);
      }
      expect(await other.dirtySubjects(false)).toEqual([]);
    } finally {
      await db.close();
    }
  }, 60_000);

  it('a refund and a reset after a flush re-list the subject in its slot’s index, and the ledger follows them down', async () => {
    const db = await PgliteDatabase.open({ dataDir: IN_MEMORY });
    try {
      await migrate(db, loadMigrations());
      const ledger = new DatabaseUsageLedger(db);
      const nowForTesting = () => Date.UTC(2026, 5, 15, 10, 30);
      const limiter = new RedisLimiter({ client, keyPrefix, ledger, nowForTesting });
      const policies = [windowPolicy('hour', 50)];
      const subjects = Array.from({ length: 6 }, (_, i) => `lowered-${i}`);
      const hourCount = async (subject: string) =>
        (await ledger.readUsageSince(subject, Date.UTC(2026, 5, 1))).find((entry) => entry.counterId === 'w:hour')?.count;
      const flushAll = async () => {
        for (const subject of await limiter.dirtySubjects(false)) {
          const dirty = await limiter.readDirty(subject);
          if (dirty === undefined) continue;
          await ledger.writeUsage([dirty]);
          expect(await limiter.clearDirty(dirty)).toBe(true);
        }
      };
      for (const subject of subjects) {
        expect((await limiter.consume({ subject, policies, cost: 3 })).allowed).toBe(true);
        const second = await limiter.consume({ subject, policies, cost: 2 });
        if (!second.allowed) throw new Error('expected an admission');
        await flushAll();
        expect(await hourCount(subject)).toBe(5);
        await limiter.refund(second.receipt!);
        expect(await limiter.dirtySubjects(false)).toEqual([subject]);
        await flushAll();
        expect(await hourCount(subject)).toBe(3);
        expect(await limiter.reset(subject, policies)).toBeGreaterThan(1);
        expect(await limiter.dirtySubjects(false)).toEqual([subject]);
        await flushAll();
        expect(await hourCount(subject)).toBe(0);
      }
    } finally {
      await db.close();
    }
  }, 60_000);
});
