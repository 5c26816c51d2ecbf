/**
 * How much of Redis's one thread a consume.lua call costs: runs N tracked
 * consume calls (a plan with hour, day and month windows, the usage ledger
 * on, 50 in flight) against the Redis at REDIS_URL (default
 * redis://127.0.0.1:6379) and prints Redis's own `usec_per_call` of EVALSHA
 * and of each command the script ran, from `INFO commandstats` (reset
 * first, so run it on a Redis nothing else uses).
 *
 *     npx tsx bench/consume-script.ts [--lua <file>] [--calls 20000]
 *
 * `--lua` measures another version of the script (e.g. one taken with
 * `git show <rev>:lua/consume.lua`); it must take the same KEYS and ARGV.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { windowPolicy } from '../src/core/policy.js';
import { hydrationMarkerKey } from '../src/redis/keys.js';
import { consumeScriptCall } from '../src/redis/scripts.js';

const { values } = parseArgs({ options: { lua: { type: 'string' }, calls: { type: 'string' } } });
const calls = Number(values.calls ?? 20_000);
const lua = readFileSync(values.lua ?? new URL('../lua/consume.lua', import.meta.url), 'utf8');
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const keyPrefix = `bench-script-${process.pid}`;
const policies = [windowPolicy('hour', 1e9), windowPolicy('day', 1e9), windowPolicy('month', 1e9)];
const options = { keyPrefix, inFlightTtlMs: 60_000, trackUsage: true };

try {
  const sha = (await redis.script('LOAD', lua)) as string;
  await redis.set(hydrationMarkerKey(keyPrefix, 'bench'), '1');
  await redis.config('RESETSTAT');
  let sent = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (sent < calls) {
      sent += 1;
      await redis.evalsha(sha, ...consumeScriptCall({ subject: 'bench', policies, cost: 1, requestId: `r${sent}` }, options));
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
  const elapsedMs = performance.now() - started;
  const stats = ((await redis.info('commandstats')) as string)
    .split('\n')
    .filter((line) => line.startsWith('cmdstat_'))
    .map((line) => /^cmdstat_(\w+):calls=(\d+),usec=\d+,usec_per_call=([\d.]+)/.exec(line))
    .flatMap((match) => (match === null ? [] : [{ command: match[1]!, perCall: Number(match[2]) / calls, usec: Number(match[3]) }]))
    .filter((stat) => stat.command !== 'info' && stat.command !== 'config');
  const evalsha = stats.find((stat) => stat.command === 'evalsha');
  console.log(`${calls} consume calls in ${elapsedMs.toFixed(0)} ms; Redis time per call: ${evalsha?.usec.toFixed(2)} µs`);
  console.log('commands per call inside the script (usec each):');
  for (const stat of stats.filter((s) => s.command !== 'evalsha').sort((a, b) => b.perCall - a.perCall)) {
    console.log(`  ${stat.command.padEnd(10)} ${stat.perCall.toFixed(2)} × ${stat.usec.toFixed(2)} µs`);
  }
} finally {
  const keys = await redis.keys(`${keyPrefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
}
