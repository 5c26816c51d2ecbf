import { fetchOnce } from './children.js';
import type { ForeignCpuMeter } from './cpu.js';
import { createLoadGenerator, type LoadOptions, type LoadResult } from './measure.js';
import type { BenchTarget, StartedTarget } from './targets.js';

/**
 * A trial is one measurement of one target: start it, check one request,
 * warm it up, measure it, stop it. A row of the report is the median of a
 * target's trials (one per `--repeat`), taken in interleaved rounds so that a
 * slow drift in the machine's load touches every row alike.
 */

export interface TrialOptions {
  readonly load: LoadOptions;
  readonly warmupSec: number;
}

export interface Trial {
  readonly warmup: LoadResult;
  readonly result: LoadResult;
  /** Share (0–1) of the machine's CPU time used by processes outside the bench during the measurement. */
  readonly foreignCpuShare: number | undefined;
  /** Why this trial cannot be trusted; empty when valid. */
  readonly problems: readonly string[];
}

/** Runs one trial of `target`; never throws for the target's own failures (they become problems). */
export async function runTrial(
  target: BenchTarget,
  options: TrialOptions,
  cpuMeter: ForeignCpuMeter,
  progress: (message: string) => void,
): Promise<Trial> {
  progress(`${target.name}: starting`);
  let started: StartedTarget;
  try {
    started = await target.start();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    progress(`${target.name}: FAILED TO START — ${message}`);
    const nothing = noResult();
    return { warmup: nothing, result: nothing, foreignCpuShare: undefined, problems: [`did not start: ${message.split('\n')[0]}`] };
  }
  try {
    const problems: string[] = [];
    const first = await fetchOnce(target.url, target.headers).then(
      ({ status, body }) => (status >= 200 && status < 300 ? undefined : `answered ${status}: ${body.slice(0, 300)}`),
      (error: unknown) => `failed: ${error instanceof Error ? error.message : String(error)}`,
    );
    if (first !== undefined) {
      problems.push(`first request ${first}`);
      progress(`${target.name}: WARNING — first request ${first}`);
    }
    const generator = createLoadGenerator(target.url, target.headers, options.load);
    let warmup: LoadResult;
    let result: LoadResult;
    let foreignCpuShare: number | undefined;
    try {
      progress(`${target.name}: warming up for ${options.warmupSec} s`);
      warmup = options.warmupSec > 0 ? await generator.run(options.warmupSec) : noResult(1);
      progress(`${target.name}: measuring for ${options.load.durationSec} s`);
      cpuMeter.reset();
      result = await generator.run(options.load.durationSec);
      foreignCpuShare = cpuMeter.foreignShare();
    } finally {
      await generator.close();
    }
    problems.push(...problemsOf(warmup, result));
    const exit = started.unexpectedExit();
    if (exit !== undefined) {
      problems.push(exit.split('\n')[0]!);
      progress(`${target.name}: ${exit}`);
    }
    const output = started.outputTail();
    if (problems.length > 0 && exit === undefined && output.length > 0) {
      const lines = output.slice(-5).map((line) => (line.length > 400 ? `${line.slice(0, 400)}…` : line));
      progress(`${target.name}: its last output:\n${lines.join('\n')}`);
    }
    const other = foreignCpuShare === undefined ? '' : `, other processes used ${Math.round(foreignCpuShare * 100)}% of the CPUs`;
    progress(`${target.name}: ${Math.round(result.requestsPerSec)} requests/s, p99 ${result.p99Ms.toFixed(2)} ms${other}${problems.length > 0 ? ' — INVALID' : ''}`);
    return { warmup, result, foreignCpuShare, problems };
  } finally {
    await started.stop();
  }
}

/** Why `result` (and its warm-up) makes a trial invalid; empty when every response was 2xx. */
export function problemsOf(warmup: LoadResult, result: LoadResult): string[] {
  const problems: string[] = [];
  for (const [phase, run] of [['warm-up', warmup], ['measurement', result]] as const) {
    if (run.non2xx > 0) problems.push(`${phase}: ${run.non2xx} non-2xx responses (${formatCodes(run.statusCodes)})`);
    if (run.errors > 0) {
      problems.push(`${phase}: ${run.errors} request errors (${run.timeouts} timeouts)${run.firstError === undefined ? '' : `, first: ${run.firstError}`}`);
    }
    if (run.totalRequests === 0) problems.push(`${phase}: no requests completed`);
  }
  return problems;
}

/**
 * The median trial of several: median throughput and percentiles, summed
 * counts. (A median of p99s, not the p99 of all requests: each trial's p99 is
 * a property of that trial's conditions.)
 */
export function medianOf(trials: readonly Trial[]): { result: LoadResult; foreignCpuShare: number | undefined } {
  const results = trials.map((trial) => trial.result);
  const statusCodes: Record<string, number> = {};
  for (const result of results) {
    for (const [code, count] of Object.entries(result.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + count;
  }
  const firstError = results.find((result) => result.firstError !== undefined)?.firstError;
  const shares = trials.map((trial) => trial.foreignCpuShare);
  return {
    result: {
      requestsPerSec: median(results.map((result) => result.requestsPerSec)),
      totalRequests: sum(results.map((result) => result.totalRequests)),
      p50Ms: median(results.map((result) => result.p50Ms)),
      p99Ms: median(results.map((result) => result.p99Ms)),
      non2xx: sum(results.map((result) => result.non2xx)),
      errors: sum(results.map((result) => result.errors)),
      timeouts: sum(results.map((result) => result.timeouts)),
      ...(firstError === undefined ? {} : { firstError }),
      statusCodes,
    },
    foreignCpuShare: shares.some((share) => share === undefined) ? undefined : median(shares as number[]),
  };
}

/** A phase that did not run; `totalRequests` 1 keeps a skipped warm-up from counting as "no requests". */
function noResult(totalRequests = 0): LoadResult {
  return { requestsPerSec: Number.NaN, totalRequests, p50Ms: Number.NaN, p99Ms: Number.NaN, non2xx: 0, errors: 0, timeouts: 0, statusCodes: {} };
}

function median(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const middle = finite.length >> 1;
  return finite.length % 2 === 1 ? finite[middle]! : (finite[middle - 1]! + finite[middle]!) / 2;
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

function formatCodes(codes: Readonly<Record<string, number>>): string {
  const parts = Object.entries(codes).filter(([code]) => !code.startsWith('2')).map(([code, count]) => `${code}: ${count}`);
  return parts.length > 0 ? parts.join(', ') : 'no status';
}
