import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/core/api-key.js';
import { periodOf } from '../../src/core/calendar.js';
import { PgliteDatabase } from '../../src/db/pglite-database.js';
import { readUsageSince } from '../../src/db/usage.js';
import { type GatewayProcess, sendWithKey, startGatewayProcess } from '../support/gateway-process.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { within } from '../support/within.js';

describe('usage ledger across a kill -9 of a gateway process', () => {
  let redis: RedisServer;
  let upstream: RecordingUpstream;
  let dataDir: string;
  const started: GatewayProcess[] = [];
  const key = generateApiKey('qg');

  beforeAll(async () => {
    redis = await startRedisServer();
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    dataDir = mkdtempSync(join(tmpdir(), 'quotagate-ledger-'));
  });
  afterAll(async () => {
    for (const gateway of started) gateway.child.kill('SIGKILL');
    await upstream.close();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const yaml = () => `
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
store:
  type: redis
  redis: { url: "${redis.url}", key_prefix: qg, command_timeout_ms: 2000 }
postgres: { data_dir: "${dataDir}" }
usage: { flush_interval_ms: 600000 }
upstreams:
  app: { url: ${upstream.origin} }
routes:
  - { name: api, path_prefix: /, upstream: app }
auth:
  api_keys:
    keys:
      - { id: k0, hash: ${hashApiKey(key)}, subject: crash-subject, plan: metered }
plans:
  metered: { limits: { month: 25 } }
logging: { level: info }
`;

  async function start(): Promise<GatewayProcess> {
    const gateway = await startGatewayProcess(yaml());
    started.push(gateway);
    return gateway;
  }

  const send = (gateway: GatewayProcess, count: number): Promise<number[]> => sendWithKey(gateway, key, count);

  it('loses nothing Redis holds: the restarted instance flushes the leftover mark; FLUSHALL then never admits past the month', async () => {
    const first = await start();
    const admittedBefore = (await send(first, 10)).filter((s) => s === 200).length;
    expect(admittedBefore).toBe(10);
    first.child.kill('SIGKILL');
    await within(first.exited, 10_000, 'the killed gateway to exit');

    // The restarted instance's first flush sweeps Redis for the dead one's marks.
    const second = await start();
    second.child.kill('SIGTERM');
    expect(await within(second.exited, 20_000, 'the gateway to drain and exit')).toBe(0);
    const db = await PgliteDatabase.open({ dataDir });
    const monthStart = periodOf('month', Date.now()).startMs;
    const rows = await readUsageSince(db, 'crash-subject', new Date(monthStart));
    await db.close();
    expect(rows.find((r) => r.counterId === 'w:month')?.count).toBe(10);

    // Redis loses everything; the ledger still counts 10 of the month's 25.
    const { execFile } = await import('node:child_process');
    await new Promise<void>((resolve, reject) =>
      execFile('redis-cli', ['-p', String(redis.port), 'FLUSHALL'], { timeout: 5_000 }, (error) => (error ? reject(error) : resolve())),
    );
    const third = await start();
    const statuses = await send(third, 20);
    expect(statuses.filter((s) => s === 200)).toHaveLength(15);
    expect(statuses.filter((s) => s === 429)).toHaveLength(5);
    third.child.kill('SIGTERM');
    expect(await within(third.exited, 20_000, 'the gateway to drain and exit')).toBe(0);
  }, 120_000);
});
