import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ChildProcesses, findFreePort, type Runtime } from './children.js';
import { ForeignCpuMeter, sampleCpuBusy } from './cpu.js';
import type { LoadOptions } from './measure.js';
import { BUSY_MACHINE, renderReport, type MeasuredRow } from './report.js';
import { defineTargets, type BenchTarget } from './targets.js';
import { medianOf, runTrial, type Trial } from './trial.js';

/**
 * `npm run bench`: loads the bench upstream directly, through a bare Node
 * proxy and through quotagate, one after the other in one run on this
 * machine, and reports them side by side (bench/README.md explains the rows).
 *
 *   npm run bench -- [--duration 10] [--connections 50] [--warmup 3]
 *                    [--only upstream,bare,quotagate] [--rate <requests/s>]
 *                    [--repeat 1] [--runtime tsx|dist]
 *
 * Without --rate every target is loaded to saturation (autocannon, closed
 * loop); with it, at that steady rate (see measure.ts).
 *
 * Exits 1 when any row saw a non-2xx response or a connection error: such a
 * run does not measure the happy path.
 */

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface BenchOptions {
  readonly load: LoadOptions;
  readonly warmupSec: number;
  readonly repeat: number;
  readonly only: readonly string[] | undefined;
  readonly runtime: Runtime;
}

function parseOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '50' },
      warmup: { type: 'string', default: '3' },
      repeat: { type: 'string', default: '1' },
      only: { type: 'string' },
      rate: { type: 'string' },
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
  return {
    load: {
      durationSec: positive('duration', values.duration),
      connections: positive('connections', values.connections),
      ...(values.rate === undefined ? {} : { ratePerSec: positive('rate', values.rate) }),
    },
    warmupSec: positive('warmup', values.warmup, 0),
    repeat: positive('repeat', values.repeat),
    only: values.only?.split(',').map((name) => name.trim()).filter((name) => name !== ''),
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
  const children = new ChildProcesses(repoRoot, options.runtime);
  process.on('exit', () => children.killAll());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
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
  });
  try {
    const cpuMeter = new ForeignCpuMeter(() => children.pids());
    const targets = selectTargets(await defineTargets({ upstreamUrl, children }), options.only);
    const trials = new Map<BenchTarget, Trial[]>(targets.map((target) => [target, []]));
    for (let round = 1; round <= options.repeat; round++) {
      if (options.repeat > 1) progress(`round ${round} of ${options.repeat}`);
      for (const target of targets) {
        trials.get(target)!.push(await runTrial(target, options, cpuMeter, progress));
        const upstreamExit = upstream.unexpectedExit();
        if (upstreamExit !== undefined) throw new Error(upstreamExit);
      }
    }
    const rows = targets.map((target): MeasuredRow => {
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
    });
    process.stdout.write(`\n${report}`);
    writeFileSync(join(repoRoot, 'bench', 'last-run.md'), report);
    progress('wrote bench/last-run.md');
    const invalid = rows.some((row) => row.problems.length > 0);
    if (invalid) progress('INVALID RUN: some responses were not 2xx or failed (see the report).');
    return invalid ? 1 : 0;
  } finally {
    await upstream.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    progress(`failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
