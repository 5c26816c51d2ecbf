/**
 * Issue 12's memory target on a production layout: the gateway's resident
 * memory with 100,000 API keys cached, on the Redis store with a PostgreSQL
 * server (not the embedded database).
 *
 *   npm run build && npx tsx bench/keys-rss.ts [--keys 100000] [--postgres URL] [--redis URL]
 *
 * It creates a throwaway database on the server (default
 * postgres://postgres@127.0.0.1:5432/postgres creates `qg_rss_<random>`),
 * migrates it with `quotagate migrate`, inserts the keys (one subject each,
 * stored as their SHA-256 like every key), starts the compiled gateway
 * (`node dist/src/bin.js serve`) in front of a local upstream, sends one
 * request with every key (each a cache miss: one query, then cached), then
 * a second pass with every key (all cache hits), and reads the gateway's
 * VmRSS and VmHWM from /proc after each pass. Every response must be 200.
 * It drops the database and deletes its Redis keys at the end. Nothing here
 * is asserted by the test suite; the numbers go to bench/RESULTS.md.
 *
 * For a heap snapshot of the gateway after the second pass (how
 * docs/operations.md#sizing counts the objects per key):
 * `QG_NODE_FLAGS="--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=/tmp"` (node
 * flags for the gateway) and `QG_SNAPSHOT_WAIT_MS=20000` (send the signal,
 * then wait that long for the file to be written).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { Agent, request } from 'undici';
import { generateApiKey, hashApiKey } from '../src/core/api-key.js';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '100000' },
    postgres: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
    connections: { type: 'string', default: '50' },
  },
});
const KEY_COUNT = Number(values.keys);
const CONNECTIONS = Number(values.connections);
const INSERT_BATCH = 5_000;
const ROOT = new URL('..', import.meta.url).pathname;

/** VmRSS and VmHWM of `pid`, in MiB. */
function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

async function waitForListening(child: ChildProcess): Promise<{ proxy: string; admin: string }> {
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the gateway did not start: ${output.slice(-2000)}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
      const line = output.split('\n').find((l) => l.includes('quotagate listening'));
      if (line === undefined) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stderr!.off('data', onData);
      // Keep draining: a full pipe would block the gateway's logging.
      child.stdout!.resume();
      child.stderr!.resume();
      resolve(JSON.parse(line) as { proxy: string; admin: string });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the gateway exited (${code}): ${output.slice(-2000)}`)));
  });
}

/** The V8 heap in use, in MiB, from the gateway's own metrics (`quotagate_nodejs_heap_size_used_bytes`). */
async function heapUsedMiB(adminUrl: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('quotagate_nodejs_heap_size_used_bytes '));
  return line === undefined ? NaN : Number(line.split(' ')[1]) / 1024 / 1024;
}

/** Sends one GET with each key, `CONNECTIONS` at a time; throws on any answer but 200. */
async function passOverEveryKey(proxyUrl: string, keys: readonly string[], dispatcher: Agent): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      const res = await request(`${proxyUrl}/x`, { headers: { 'x-api-key': key }, dispatcher });
      const body = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`a request answered ${res.statusCode}: ${body}`);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
}

async function main(): Promise<void> {
  const name = `qg_rss_${randomBytes(4).toString('hex')}`;
  const admin = postgres(values.postgres, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const databaseUrl = new URL(values.postgres);
  databaseUrl.pathname = `/${name}`;
  const keyPrefix = `qgrss${randomBytes(3).toString('hex')}`;
  const upstream = createServer((_req, res) => res.end('{"ok":true}')).listen(0, '127.0.0.1');
  await new Promise((resolve) => upstream.once('listening', resolve));
  const dir = mkdtempSync(join(tmpdir(), 'qg-keys-rss-'));
  const configPath = join(dir, 'gateway.yaml');
  writeFileSync(
    configPath,
    `
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
store: { type: redis, redis: { url: "${values.redis}", key_prefix: ${keyPrefix} } }
postgres: { url: "${databaseUrl.href}" }
upstreams:
  app: { url: "http://127.0.0.1:${(upstream.address() as AddressInfo).port}" }
routes:
  - { name: api, path_prefix: /, upstream: app, auth: api_key }
plans:
  bench: { limits: { hour: 1000000000, day: 1000000000, month: 1000000000 } }
auth:
  api_keys: { cache: { max_entries: ${Math.max(KEY_COUNT, 1)} } }
logging: { level: info, access_log: { enabled: false } }
`,
  );
  let gateway: ChildProcess | undefined;
  const dispatcher = new Agent({ connections: CONNECTIONS });
  try {
    execFileSync(process.execPath, ['dist/src/bin.js', 'migrate', '--config', configPath], { cwd: ROOT, stdio: 'ignore' });
    const keys = Array.from({ length: KEY_COUNT }, () => generateApiKey('qg'));
    const database = postgres(databaseUrl.href, { max: 1, onnotice: () => {} });
    for (let start = 0; start < KEY_COUNT; start += INSERT_BATCH) {
      const batch = keys.slice(start, start + INSERT_BATCH);
      const ids = batch.map((_, i) => `s${start + i}`);
      await database`INSERT INTO subjects (id, plan) SELECT unnest(${ids}::text[]), 'bench'`;
      await database`
        INSERT INTO api_keys (id, subject_id, display_prefix, key_hash)
        SELECT 'k' || s, s, 'qg_', h FROM unnest(${ids}::text[], ${batch.map(hashApiKey)}::text[]) AS t(s, h)`;
    }
    await database.end();
    gateway = spawn(process.execPath, [...(process.env['QG_NODE_FLAGS'] ?? '').split(' ').filter(Boolean), 'dist/src/bin.js', 'serve', '--config', configPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const { proxy, admin: adminUrl } = await waitForListening(gateway);
    const reading = async () => ({ ...memoryMiB(gateway!.pid!), heap: await heapUsedMiB(adminUrl) });
    const started = await reading();
    await passOverEveryKey(proxy, keys, dispatcher);
    const afterMisses = await reading();
    await passOverEveryKey(proxy, keys, dispatcher);
    const afterHits = await reading();
    if (process.env['QG_SNAPSHOT_WAIT_MS'] !== undefined) {
      gateway.kill('SIGUSR2');
      await new Promise((resolve) => setTimeout(resolve, Number(process.env['QG_SNAPSHOT_WAIT_MS'])));
    }
    const row = (what: string, m: { rss: number; peak: number; heap: number }) => `| ${what} | ${m.rss.toFixed(0)} | ${m.peak.toFixed(0)} | ${m.heap.toFixed(0)} |`;
    console.log(`${KEY_COUNT} keys, Redis store, PostgreSQL server; the gateway's own process (node ${process.version}, compiled dist/)\n`);
    console.log('| after | RSS MiB | peak RSS MiB | V8 heap used MiB |\n| --- | ---: | ---: | ---: |');
    console.log(row('start (nothing cached)', started));
    console.log(row(`one request per key (${KEY_COUNT} lookups, all cached)`, afterMisses));
    console.log(row('a second request per key (cache hits)', afterHits));
  } finally {
    gateway?.kill('SIGKILL');
    await dispatcher.close();
    upstream.close();
    const redis = new Redis(values.redis);
    let cursor = '0';
    do {
      const [nextCursor, found] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
      cursor = nextCursor;
      if (found.length > 0) await redis.del(...found);
    } while (cursor !== '0');
    redis.disconnect();
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

await main();
