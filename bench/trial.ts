import { performance } from 'node:perf_hooks';
import { fetchOnce } from './children.js';
import type { ForeignCpuMeter } from './cpu.js';
import { createLoadGenerator, type LoadOptions, type LoadResult } from './measure.js';
import { cpuMsBetween, treeCpuMs, treePeakRssKiB, processPeakRssKiB } from './proc.js';
import { commandsBetween, scriptCalls, type BenchRedis } from './redis.js';
import { cpuUsPerRequest, median } from './stats.js';
import type { BenchTarget, StartedTarget } from './targets.js';

/**
 * A trial is one measurement of one target: start it, check one request,
 * warm it up, measure it at saturation (requests/s, latency, the proxy's CPU
 * time per request), then at a steady paced rate (latency), read its peak
 * RSS, stop it. A row of the report is the median of a target's trials (one
 * per `--repeat`), taken in interleaved rounds so that a slow drift in the
 * machine's load touches every row alike.
 */

export interface TrialOptions {
  /** The saturation phase: closed-loop connections and seconds measured. */
  readonly load: LoadOptions;
  readonly warmupSec: number;
  /** The paced phase; skipped when undefined. */
  readonly paced: { readonly ratePerSec: number; readonly durationSec: number; readonly connections: number } | undefined;
  /** The bench's Redis, to count the commands of rows that use it. */
  readonly redis: BenchRedis | undefined;
}

/** Seconds of paced load before the paced measurement (its connections open; not reported). */
const PACED_WARMUP_SEC = 1;

export interface Trial {
  readonly warmup: LoadResult;
  /** The saturation measurement. */
  readonly result: LoadResult;
  /** The paced measurement; undefined when skipped. */
  readonly paced: LoadResult | undefined;
  /** Share (0–1) of the machine's CPU time used by processes outside the bench during the saturation measurement. */
  readonly foreignCpuShare: number | undefined;
  /** CPU time (user + system, µs) of the target's process tree per request completed in the saturation measurement. */
  readonly cpuUsPerRequest: number | undefined;
  /** The target's CPU time over the saturation measurement's wall time: 1 is one core fully busy. */
  readonly coreShare: number | undefined;
  /** Peak RSS (VmHWM, MiB) of the target's process tree at the end of the trial. */
  readonly peakRssMiB: number | undefined;
  /** Peak RSS (VmHWM, MiB) of the target's own process, without its children (quotagate's embedded database process). */
  readonly ownPeakRssMiB: number | undefined;
  /**
   * Redis script calls (EVALSHA, …: client round trips) per request of the paced measurement (of the
   * saturation one when paced is skipped), for rows using the bench's Redis.
   */
  readonly redisCommandsPerRequest: number | undefined;
  /** Every command Redis ran per request, by command (`evalsha`, and those a script ran), most called first. */
  readonly redisCommandMix: readonly (readonly [string, number])[] | undefined;
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
    return { ...emptyTrial(), problems: [`did not start: ${message.split('\n')[0]}`] };
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
    const generator = createLoadGenerator(target.url, target.headers, { connections: options.load.connections });
    let warmup: LoadResult;
    let result: LoadResult;
    let foreignCpuShare: number | undefined;
    let cpuMs: number | undefined;
    let elapsedMs: number;
    let redisCommands: Map<string, number> | undefined;
    let redisRequests = 0;
    const countRedis = target.usesRedis && options.redis !== undefined;
    try {
      progress(`${target.name}: warming up for ${options.warmupSec} s`);
      warmup = options.warmupSec > 0 ? await generator.run(options.warmupSec) : noResult(1);
      progress(`${target.name}: measuring for ${options.load.durationSec} s at saturation`);
      // Commands are counted over the paced phase when it runs: it waits for every request it sent, so
      // the count of requests is exact; at saturation the requests in flight when it stops are not counted.
      const redisBefore = countRedis && options.paced === undefined ? await options.redis!.commandCalls() : undefined;
      cpuMeter.reset();
      const cpuBefore = treeCpuMs(started.pid);
      const startedAt = performance.now();
      result = await generator.run(options.load.durationSec);
      elapsedMs = performance.now() - startedAt;
      const cpuAfter = treeCpuMs(started.pid);
      foreignCpuShare = cpuMeter.foreignShare();
      cpuMs = cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuMsBetween(cpuBefore, cpuAfter);
      if (redisBefore !== undefined) {
        redisCommands = commandsBetween(redisBefore, await options.redis!.commandCalls());
        redisRequests = result.totalRequests;
      }
    } finally {
      await generator.close();
    }
    problems.push(...problemsOf(warmup, result));
    let paced: LoadResult | undefined;
    if (options.paced !== undefined) {
      const pacer = createLoadGenerator(target.url, target.headers, { connections: options.paced.connections, ratePerSec: options.paced.ratePerSec });
      try {
        const pacedWarmup = await pacer.run(PACED_WARMUP_SEC);
        progress(`${target.name}: measuring for ${options.paced.durationSec} s at ${options.paced.ratePerSec} requests/s`);
        const redisBefore = countRedis ? await options.redis!.commandCalls() : undefined;
        paced = await pacer.run(options.paced.durationSec);
        if (redisBefore !== undefined) {
          redisCommands = commandsBetween(redisBefore, await options.redis!.commandCalls());
          redisRequests = paced.totalRequests + paced.errors;
        }
        problems.push(...problemsOf(pacedWarmup, paced).map((problem) => `paced ${problem}`));
      } finally {
        await pacer.close();
      }
    }
    const peakRssKiB = treePeakRssKiB(started.pid);
    const ownPeakRssKiB = processPeakRssKiB(started.pid);
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
    const trial: Trial = {
      warmup,
      result,
      paced,
      foreignCpuShare,
      cpuUsPerRequest: cpuUsPerRequest(cpuMs, result.totalRequests),
      coreShare: cpuMs === undefined ? undefined : cpuMs / elapsedMs,
      peakRssMiB: peakRssKiB === undefined ? undefined : peakRssKiB / 1024,
      ownPeakRssMiB: ownPeakRssKiB === undefined ? undefined : ownPeakRssKiB / 1024,
      ...perRequest(redisCommands, redisRequests),
      problems,
    };
    progress(`${target.name}: ${describeTrial(trial)}${problems.length > 0 ? ' — INVALID' : ''}`);
    return trial;
  } finally {
    await started.stop();
  }
}

function describeTrial(trial: Trial): string {
  const parts = [`${Math.round(trial.result.requestsPerSec)} requests/s`, `p99 ${trial.result.p99Ms.toFixed(2)} ms`];
  if (trial.cpuUsPerRequest !== undefined) parts.push(`${trial.cpuUsPerRequest.toFixed(0)} µs CPU/request`);
  if (trial.paced !== undefined) parts.push(`paced p99 ${trial.paced.p99Ms.toFixed(2)} ms${(trial.paced.unsent ?? 0) > 0 ? ` (could not keep up: ${trial.paced.unsent} requests not sent)` : ''}`);
  if (trial.peakRssMiB !== undefined) parts.push(`peak RSS ${trial.peakRssMiB.toFixed(0)} MiB (own ${trial.ownPeakRssMiB?.toFixed(0) ?? '—'})`);
  if (trial.redisCommandMix !== undefined) parts.push(`Redis per request: ${formatCommandMix(trial.redisCommandMix)}`);
  if (trial.foreignCpuShare !== undefined) parts.push(`other processes used ${Math.round(trial.foreignCpuShare * 100)}% of the CPUs`);
  return parts.join(', ');
}

function emptyTrial(): Omit<Trial, 'problems'> {
  const nothing = noResult();
  return {
    warmup: nothing,
    result: nothing,
    paced: undefined,
    foreignCpuShare: undefined,
    cpuUsPerRequest: undefined,
    coreShare: undefined,
    peakRssMiB: undefined,
    ownPeakRssMiB: undefined,
    redisCommandsPerRequest: undefined,
    redisCommandMix: undefined,
  };
}

/** Redis commands per request, in total and by command; undefined when not counted or no request completed. */
function perRequest(commands: ReadonlyMap<string, number> | undefined, requests: number): Pick<Trial, 'redisCommandsPerRequest' | 'redisCommandMix'> {
  if (commands === undefined || requests === 0) return { redisCommandsPerRequest: undefined, redisCommandMix: undefined };
  const mix = [...commands].map(([command, calls]) => [command, calls / requests] as const).sort((a, b) => b[1] - a[1]);
  return { redisCommandsPerRequest: scriptCalls(mix), redisCommandMix: mix };
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

/** A row's medians over its trials; see medianOf. */
export type TrialMedians = Omit<Trial, 'warmup' | 'problems'>;

/**
 * The median trial of several: each measure the median over the trials,
 * counts summed. (A median of p99s, not the p99 of all requests: each trial's
 * p99 is a property of that trial's conditions.) The paced maximum is the
 * largest of the trials': a stall in any trial is a stall.
 */
export function medianOf(trials: readonly Trial[]): TrialMedians {
  const paced = trials.flatMap((trial) => (trial.paced === undefined ? [] : [trial.paced]));
  const shares = trials.map((trial) => trial.foreignCpuShare);
  return {
    result: medianResult(trials.map((trial) => trial.result)),
    paced: paced.length === 0 ? undefined : { ...medianResult(paced), maxMs: Math.max(...paced.map((result) => result.maxMs)) },
    foreignCpuShare: shares.some((share) => share === undefined) ? undefined : median(shares),
    cpuUsPerRequest: median(trials.map((trial) => trial.cpuUsPerRequest)),
    coreShare: median(trials.map((trial) => trial.coreShare)),
    peakRssMiB: median(trials.map((trial) => trial.peakRssMiB)),
    ownPeakRssMiB: median(trials.map((trial) => trial.ownPeakRssMiB)),
    redisCommandsPerRequest: median(trials.map((trial) => trial.redisCommandsPerRequest)),
    // The mix of the trial whose total is the median (or the first counted), for the report's line.
    redisCommandMix: medianTrialMix(trials),
  };
}

function medianTrialMix(trials: readonly Trial[]): Trial['redisCommandMix'] {
  const counted = trials.filter((trial) => trial.redisCommandsPerRequest !== undefined);
  const middle = median(counted.map((trial) => trial.redisCommandsPerRequest));
  return (counted.find((trial) => trial.redisCommandsPerRequest === middle) ?? counted[0])?.redisCommandMix;
}

function medianResult(results: readonly LoadResult[]): LoadResult {
  const statusCodes: Record<string, number> = {};
  for (const result of results) {
    for (const [code, count] of Object.entries(result.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + count;
  }
  const firstError = results.find((result) => result.firstError !== undefined)?.firstError;
  const middle = (values: readonly number[]): number => median(values) ?? Number.NaN;
  return {
    requestsPerSec: middle(results.map((result) => result.requestsPerSec)),
    totalRequests: sum(results.map((result) => result.totalRequests)),
    p50Ms: middle(results.map((result) => result.p50Ms)),
    p99Ms: middle(results.map((result) => result.p99Ms)),
    maxMs: middle(results.map((result) => result.maxMs)),
    non2xx: sum(results.map((result) => result.non2xx)),
    errors: sum(results.map((result) => result.errors)),
    timeouts: sum(results.map((result) => result.timeouts)),
    ...(firstError === undefined ? {} : { firstError }),
    statusCodes,
    ...(results.some((result) => result.unsent !== undefined) ? { unsent: sum(results.map((result) => result.unsent ?? 0)) } : {}),
  };
}

/** A phase that did not run; `totalRequests` 1 keeps a skipped warm-up from counting as "no requests". */
function noResult(totalRequests = 0): LoadResult {
  return { requestsPerSec: Number.NaN, totalRequests, p50Ms: Number.NaN, p99Ms: Number.NaN, maxMs: Number.NaN, non2xx: 0, errors: 0, timeouts: 0, statusCodes: {} };
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

function formatCodes(codes: Readonly<Record<string, number>>): string {
  const parts = Object.entries(codes).filter(([code]) => !code.startsWith('2')).map(([code, count]) => `${code}: ${count}`);
  return parts.length > 0 ? parts.join(', ') : 'no status';
}

/** `1.000 script calls; 3.00 commands in all (evalsha 1.00, incr 1.00, pttl 1.00)`, per request. */
export function formatCommandMix(mix: readonly (readonly [string, number])[]): string {
  const total = mix.reduce((sum, [, perRequest]) => sum + perRequest, 0);
  const parts = mix.map(([command, perRequest]) => `${command} ${perRequest.toFixed(perRequest < 0.01 ? 4 : 2)}`).join(', ');
  return `${scriptCalls(mix).toFixed(3)} script calls; ${total.toFixed(2)} commands in all${parts === '' ? '' : ` (${parts})`}`;
}
