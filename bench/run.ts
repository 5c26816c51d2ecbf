import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ChildProcesses, findFreePort, type Runtime } from './children.js';
import { ForeignCpuMeter, sampleCpuBusy } from './cpu.js';
import type { LoadOptions } from './measure.js';
import { allowedCpus, pinThisProcess, planPinning } from './pinning.js';
import { startBenchRedis, type BenchRedis } from './redis.js';
import { BUSY_MACHINE, renderReport, type MeasuredRow } from './report.js';
import { defineTargets, type BenchTarget } from './targets.js';
import { medianOf, runTrial, type Trial } from './trial.js';

/**
 * `npm run bench`: loads the bench upstream directly, through a bare Node
 * proxy, through Fastify + @fastify/rate-limit + @fastify/http-proxy and
 * through quotagate (memory store and Redis store), one after the other in
 * one run on this machine, and reports them side by side (bench/README.md
 * explains the rows and the columns).
 *
 *   npm run bench -- [--quick] [--duration 10] [--warmup 3] [--connections 50]
 *                    [--rate 2000] [--paced-duration <s>] [--repeat 3]
 *                    [--only upstream,bare,fastify,quotagate,quotagate-redis]
 *                    [--no-pin] [--runtime tsx|dist]
 *
 * Each trial loads its target to saturation (autocannon, closed loop), then
 * at a steady paced rate (see measure.ts). The proxy being measured runs
 * alone on one CPU when `taskset` can pin it (pinning.ts).
 *
 * Exits 1 when any row saw a non-2xx response or a connection error: such a
 * run does not measure the happy path.
 */

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface BenchOptions {
  readonly load: LoadOptions;
  readonly warmupSec: number;
  readonly paced: { readonly ratePerSec: number; readonly durationSec: number } | undefined;
  readonly repeat: number;
  readonly only: readonly string[] | undefined;
  readonly pin: boolean;
  readonly runtime: Runtime;
}

/** Defaults of a full run, and of `--quick` (a smoke run: does every row start and answer 2xx?). */
const FULL = { duration: '10', warmup: '3', repeat: '3' } as const;
const QUICK = { duration: '2', warmup: '1', repeat: '1' } as const;
/** The paced rate of issue 12's latency target. */
const DEFAULT_PACED_RATE = '2000';

function parseOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      connections: { type: 'string', default: '50' },
      warmup: { type: 'string' },
      repeat: { type: 'string' },
      only: { type: 'string' },
      rate: { type: 'string', default: DEFAULT_PACED_RATE },
      'paced-duration': { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      runtime: { type: 'string', default: 'tsx' },
    },
  });
  const positive = (flag: string, raw: string, min = 1): number => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${flag}: expected an integer ≥ ${min}, got "${raw}"`);
    return value;
  };
  if (values.runtime !== 'tsx' && values.runtime !== 'dist') {
    throw new Error(`--runtime: expected "tsx" or "dist", got "${values.runtime}"`);
  }
  const defaults = values.quick ? QUICK : FULL;
  const durationSec = positive('duration', values.duration ?? defaults.duration);
  const ratePerSec = positive('rate', values.rate, 0);
  return {
    load: { durationSec, connections: positive('connections', values.connections) },
    warmupSec: positive('warmup', values.warmup ?? defaults.warmup, 0),
    paced: ratePerSec === 0 ? undefined : { ratePerSec, durationSec: positive('paced-duration', values['paced-duration'] ?? String(durationSec)) },
    repeat: positive('repeat', values.repeat ?? defaults.repeat),
    only: values.only?.split(',').map((name) => name.trim()).filter((name) => name !== ''),
    pin: !values['no-pin'],
    runtime: values.runtime,
  };
}

function selectTargets(all: readonly BenchTarget[], only: readonly string[] | undefined): BenchTarget[] {
  if (only === undefined) return [...all];
  const unknown = only.filter((name) => !all.some((target) => target.name === name));
  if (unknown.length > 0) {
    throw new Error(`--only: unknown target ${unknown.join(', ')} (known: ${all.map((target) => target.name).join(', ')})`);
  }
  return all.filter((target) => only.includes(target.name));
}

function commandLine(argv: readonly string[]): string {
  const args = argv.join(' ');
  if (process.env['npm_lifecycle_event'] === 'bench') return `npm run bench${args === '' ? '' : ` -- ${args}`}`;
  return `npx tsx bench/run.ts${args === '' ? '' : ` ${args}`}`;
}

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const options = parseOptions(argv);
  const startedAt = new Date();
  const cpuBusyBefore = await sampleCpuBusy();
  if (cpuBusyBefore > BUSY_MACHINE) progress(`WARNING — the CPUs were ${Math.round(cpuBusyBefore * 100)}% busy before the run: other work will skew every row`);
  const pinning = planPinning(options.pin ? allowedCpus() : undefined, options.pin);
  if (pinning.restCpus !== undefined) pinThisProcess(pinning.restCpus);
  progress(pinning.summary);
  const children = new ChildProcesses(repoRoot, options.runtime);
  // Every way out of this process kills the children: a normal exit, an uncaught error (both emit 'exit'), a signal.
  process.on('exit', () => children.killAll());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      progress(`${signal}: stopping`);
      children.killAll();
      process.exit(130);
    });
  }

  const upstreamPort = await findFreePort();
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  progress('bench upstream: starting');
  const upstream = await children.start({
    name: 'bench upstream',
    entry: 'bench/upstream.ts',
    args: ['--port', String(upstreamPort)],
    readyUrl: upstreamUrl,
    ...(pinning.restCpus === undefined ? {} : { cpus: pinning.restCpus }),
  });
  let stopRedis = async (): Promise<void> => {};
  try {
    const cpuMeter = new ForeignCpuMeter(() => children.pids());
    let redis: BenchRedis | undefined;
    const selected = selectTargets(
      await defineTargets({
        upstreamUrl,
        upstreamPid: upstream.pid,
        redisUrl: () => redis!.url,
        proxyCpus: pinning.proxyCpus,
        children,
      }),
      options.only,
    );
    const externalRedis = process.env['REDIS_URL'];
    if (selected.some((target) => target.usesRedis)) {
      progress(externalRedis === undefined ? 'bench redis: starting' : 'bench redis: using REDIS_URL');
      redis = await startBenchRedis(children, externalRedis, pinning.restCpus);
      stopRedis = () => redis!.stop();
    }
    const trials = new Map<BenchTarget, Trial[]>(selected.map((target) => [target, []]));
    const trialOptions = { load: options.load, warmupSec: options.warmupSec, paced: options.paced && { ...options.paced, connections: options.load.connections }, redis };
    for (let round = 1; round <= options.repeat; round++) {
      if (options.repeat > 1) progress(`round ${round} of ${options.repeat}`);
      for (const target of selected) {
        trials.get(target)!.push(await runTrial(target, trialOptions, cpuMeter, progress));
        const upstreamExit = upstream.unexpectedExit();
        if (upstreamExit !== undefined) throw new Error(upstreamExit);
      }
    }
    const rows = selected.map((target): MeasuredRow => {
      const runs = trials.get(target)!;
      const problems = runs.flatMap((trial, index) => trial.problems.map((problem) => (runs.length > 1 ? `trial ${index + 1}: ${problem}` : problem)));
      return { name: target.name, description: target.description, trials: runs, ...medianOf(runs), problems };
    });

    const report = renderReport(rows, {
      command: commandLine(argv),
      load: options.load,
      warmupSec: options.warmupSec,
      runtime: options.runtime === 'tsx' ? '`node --import tsx`' : 'compiled `dist/` JavaScript',
      repoRoot,
      startedAt,
      repeat: options.repeat,
      cpuBusyBefore,
      paced: options.paced,
      pinning: pinning.summary,
      redis: redis === undefined
        ? 'not used'
        : redis.own
          ? `the bench's own redis-server (no persistence)${pinning.restCpus === undefined ? '' : `, on CPU ${pinning.restCpus}`}; its CPU is not in any row's CPU µs/req`
          : 'REDIS_URL (shared: its command counts include other clients\' commands, and it is not pinned)',
    });
    process.stdout.write(`\n${report}`);
    writeFileSync(join(repoRoot, 'bench', 'last-run.md'), report);
    progress('wrote bench/last-run.md');
    const invalid = rows.some((row) => row.problems.length > 0);
    if (invalid) progress('INVALID RUN: some responses were not 2xx or failed (see the report).');
    return invalid ? 1 : 0;
  } finally {
    await upstream.stop();
    await stopRedis();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    progress(`failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
