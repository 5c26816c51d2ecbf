import { execFileSync } from 'node:child_process';
import { cpus, release, type } from 'node:os';
import type { LoadOptions } from './measure.js';
import { difference, ratioTo } from './stats.js';
import { formatCommandMix, type Trial, type TrialMedians } from './trial.js';

/**
 * The bench report: one markdown table of the rows, the ratios that the
 * design's targets are stated in, and what a reader needs to reproduce the
 * run. The same text is printed and written to bench/last-run.md.
 */

/**
 * The targets of issue 12 (DESIGN.md §1), each checked against this run's
 * medians. Never asserted by a test: a timing is a property of a machine.
 */
export const TARGETS = {
  /** quotagate, memory store: at least this fraction of the bare proxy's requests/s… */
  memoryThroughput: 0.9,
  /** …and at most this multiple of its CPU time per request. */
  memoryCpu: 1.15,
  /** quotagate, Redis store: at least this fraction of the bare proxy's requests/s (stretch 0.90)… */
  redisThroughput: 0.8,
  /** …and at least this multiple of the Fastify row's. */
  redisOverFastify: 1.5,
  /** Paced p99 over the bare proxy's, in ms, at the paced rate (2,000 requests/s by default). */
  pacedAddedP99Ms: 0.5,
  /** No paced response slower than this, in ms (the issue asks it of a 60 s paced run). */
  stallMs: 10,
  /** Peak RSS of quotagate on the embedded ledger database, in MiB. */
  embeddedRssMiB: 200,
} as const;

/** Above this share of CPU time used by other processes, the report warns that other work skews the rows. */
export const BUSY_MACHINE = 0.1;

/** One row of the report: a target's trials and their medians (the trial itself when there is one). */
export interface MeasuredRow extends TrialMedians {
  readonly name: string;
  readonly description: string;
  readonly trials: readonly Trial[];
  /** Why this row cannot be trusted (non-2xx, errors, a failed first request); empty when valid. */
  readonly problems: readonly string[];
}

export interface RunInfo {
  readonly command: string;
  readonly load: LoadOptions;
  readonly warmupSec: number;
  readonly runtime: string;
  readonly repoRoot: string;
  readonly startedAt: Date;
  /** Trials per row. */
  readonly repeat: number;
  /** Fraction of CPU time (0–1) spent busy over a short sample just before the run. */
  readonly cpuBusyBefore: number;
  /** The paced phase: requests/s and seconds measured; undefined when skipped. */
  readonly paced: { readonly ratePerSec: number; readonly durationSec: number } | undefined;
  /** What `taskset` pinning was in effect (one sentence). */
  readonly pinning: string;
  /** Where the Redis rows' Redis was (one sentence). */
  readonly redis: string;
}

/** The whole report as markdown. */
export function renderReport(rows: readonly MeasuredRow[], info: RunInfo): string {
  const invalid = rows.filter((row) => row.problems.length > 0);
  const lines: string[] = [];
  lines.push(`# quotagate bench — ${info.startedAt.toISOString()}`, '');
  if (invalid.length > 0) {
    lines.push('> **INVALID RUN** — some responses were not 2xx or failed; the numbers below do not measure the', '> happy path and must not be compared or copied into RESULTS.md:');
    for (const row of invalid) for (const problem of row.problems) lines.push(`> - **${row.name}**: ${problem}`);
    lines.push('');
  }
  const skewed = rows.filter((row) => (row.foreignCpuShare ?? 0) > BUSY_MACHINE);
  if (skewed.length > 0) {
    lines.push(`> **Skewed**: other processes used more than ${percent(BUSY_MACHINE)} of the CPUs while ${skewed.map((row) => `**${row.name}**`).join(', ')} ran (column "other CPU"); rerun on a quiet machine before comparing.`, '');
  }
  const paced = info.paced;
  const overloaded = paced === undefined ? [] : rows.filter((row) => row.result.requestsPerSec < paced.ratePerSec || row.trials.some((trial) => (trial.paced?.unsent ?? 0) > 0));
  if (overloaded.length > 0) {
    lines.push(`> **Overloaded**: ${overloaded.map((row) => `**${row.name}**`).join(', ')} served fewer requests/s at saturation than the paced rate (${paced!.ratePerSec}/s), or fell a second behind it (the paced generator then stops sending): their paced latencies measure a growing queue, not service time.`, '');
  }
  lines.push(`Pinning: ${info.pinning}.`, '');
  lines.push(renderTable(rows), '');
  if (invalid.length === 0) lines.push('Every response of every trial (warm-ups included) was 2xx; no request failed.', '');
  lines.push(renderTargets(rows, info), '');
  lines.push(renderTrials(rows), '');
  lines.push(renderSetup(rows, info));
  return lines.join('\n') + '\n';
}

/** The medians of the bare row, which every ratio divides by. */
function bareOf(rows: readonly MeasuredRow[]): MeasuredRow | undefined {
  return rows.find((row) => row.name === 'bare');
}

function renderTable(rows: readonly MeasuredRow[]): string {
  const bare = bareOf(rows);
  const out = [
    '| target | req/s | ÷ bare | CPU µs/req | ÷ bare CPU | core busy | p50 ms | p99 ms | paced p99 ms | paced p99 − bare | paced max ms | peak RSS MiB: process (with children) | other CPU |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    const { name, result, paced } = row;
    const isBare = row === bare;
    // The upstream is not a proxy: its ratios to one would say nothing.
    const compared = row.name !== 'upstream' && !isBare;
    const toBare = (value: number | undefined, reference: number | undefined): string => (isBare ? '1.00' : compared ? ratio(ratioTo(value, reference)) : '—');
    out.push(
      `| ${name} | ${perSec(result.requestsPerSec)} | ${toBare(result.requestsPerSec, bare?.result.requestsPerSec)} | ${micros(row.cpuUsPerRequest)} | ${toBare(row.cpuUsPerRequest, bare?.cpuUsPerRequest)} | ${percent(row.coreShare)} | ${ms(result.p50Ms)} | ${ms(result.p99Ms)} | ${ms(paced?.p99Ms)} | ${compared ? signedMs(difference(paced?.p99Ms, bare?.paced?.p99Ms)) : '—'} | ${ms(paced?.maxMs)} | ${mib(row.ownPeakRssMiB)} (${mib(row.peakRssMiB)}) | ${percent(row.foreignCpuShare)} |`,
    );
  }
  return out.join('\n');
}

function renderTrials(rows: readonly MeasuredRow[]): string {
  const out = ['Each trial (req/s · CPU µs/req · p99 ms · paced p99 ms · peak RSS MiB · other CPU), in the order run:', ''];
  for (const row of rows) {
    const trials = row.trials.map((trial) =>
      [perSec(trial.result.requestsPerSec), micros(trial.cpuUsPerRequest), ms(trial.result.p99Ms), ms(trial.paced?.p99Ms), mib(trial.peakRssMiB), percent(trial.foreignCpuShare)].join(' / '),
    );
    out.push(`- ${row.name}: ${trials.join(' ‖ ')}`);
  }
  return out.join('\n');
}

/** One line of the targets list: what is compared, the measured value, the target, met or missed. */
export interface TargetCheck {
  readonly what: string;
  readonly value: string;
  readonly target: string;
  /** undefined when the run lacks a row or a measure the check needs. */
  readonly met: boolean | undefined;
}

/** The issue-12 targets checked against the rows present. */
export function checkTargets(rows: readonly MeasuredRow[], paced: RunInfo['paced']): TargetCheck[] {
  const byName = new Map(rows.map((row) => [row.name, row]));
  const bare = byName.get('bare');
  const memory = byName.get('quotagate');
  const redis = byName.get('quotagate-redis');
  const fastify = byName.get('fastify');
  const checks: TargetCheck[] = [];
  const atLeast = (what: string, value: number | undefined, min: number, target: string): void => {
    checks.push({ what, value: ratio(value), target, met: value === undefined ? undefined : value >= min });
  };
  const atMost = (what: string, value: number | undefined, max: number, format: (value: number | undefined) => string, target: string): void => {
    checks.push({ what, value: format(value), target, met: value === undefined ? undefined : value <= max });
  };
  if (memory !== undefined) {
    atLeast('quotagate (memory) req/s ÷ bare', ratioTo(memory.result.requestsPerSec, bare?.result.requestsPerSec), TARGETS.memoryThroughput, `≥ ${TARGETS.memoryThroughput.toFixed(2)}`);
    atMost('quotagate (memory) CPU/request ÷ bare', ratioTo(memory.cpuUsPerRequest, bare?.cpuUsPerRequest), TARGETS.memoryCpu, ratio, `≤ ${TARGETS.memoryCpu.toFixed(2)}`);
  }
  if (redis !== undefined) {
    atLeast('quotagate-redis req/s ÷ bare', ratioTo(redis.result.requestsPerSec, bare?.result.requestsPerSec), TARGETS.redisThroughput, `≥ ${TARGETS.redisThroughput.toFixed(2)} (stretch 0.90)`);
    atLeast('quotagate-redis req/s ÷ fastify', ratioTo(redis.result.requestsPerSec, fastify?.result.requestsPerSec), TARGETS.redisOverFastify, `≥ ${TARGETS.redisOverFastify.toFixed(2)}`);
    const commands = redis.redisCommandsPerRequest;
    checks.push({
      what: 'quotagate-redis Redis round trips (script calls) per request, and every command Redis ran for it',
      value: redis.redisCommandMix === undefined ? '—' : formatCommandMix(redis.redisCommandMix),
      target: 'exactly 1 round trip',
      met: commands === undefined ? undefined : Math.round(commands * 100) === 100,
    });
  }
  const rate = paced === undefined ? 'the paced rate' : `${paced.ratePerSec.toLocaleString('en-US')} req/s`;
  for (const row of [memory, redis]) {
    if (row === undefined) continue;
    atMost(`${row.name} paced p99 − bare's, at ${rate}`, difference(row.paced?.p99Ms, bare?.paced?.p99Ms), TARGETS.pacedAddedP99Ms, signedMs, `≤ +${TARGETS.pacedAddedP99Ms} ms`);
  }
  for (const row of [memory, redis]) {
    if (row === undefined) continue;
    const seconds = paced === undefined ? '' : ` (this run: ${paced.durationSec} s per trial; the issue asks it of 60 s)`;
    atMost(`${row.name} slowest paced response`, row.paced?.maxMs, TARGETS.stallMs, (value) => (value === undefined ? '—' : `${value.toFixed(2)} ms`), `≤ ${TARGETS.stallMs} ms${seconds}`);
  }
  for (const row of [memory, redis]) {
    if (row === undefined) continue;
    // The gateway's own process: the embedded database runs in a child of its own, reported beside it.
    atMost(
      `${row.name} peak RSS (embedded ledger database)`,
      row.ownPeakRssMiB,
      TARGETS.embeddedRssMiB,
      (value) => `${mib(value)} MiB (with the database's process: ${mib(row.peakRssMiB)} MiB)`,
      `≤ ${TARGETS.embeddedRssMiB} MiB for the gateway's process`,
    );
  }
  return checks;
}

function renderTargets(rows: readonly MeasuredRow[], info: RunInfo): string {
  const checks = checkTargets(rows, info.paced);
  if (checks.length === 0) return '_No targets: run `bare` and a quotagate row._';
  const out = ['Targets (issue 12; DESIGN.md §1):', ''];
  for (const check of checks) {
    const verdict = check.met === undefined ? 'not measured' : check.met ? 'met' : '**missed**';
    out.push(`- ${check.what}: ${check.value}, target ${check.target}: ${verdict}`);
  }
  for (const row of rows) {
    if (row.name !== 'quotagate-redis' && row.redisCommandMix !== undefined) out.push(`- for comparison, ${row.name} Redis per request: ${formatCommandMix(row.redisCommandMix)}`);
  }
  out.push('- RSS ≤ 150 MiB on Redis + server PostgreSQL with 100,000 keys cached: not measured by this bench (both gateway rows use the embedded database, one key)');
  return out.join('\n');
}

function renderSetup(rows: readonly MeasuredRow[], info: RunInfo): string {
  const processors = cpus();
  const load = info.load;
  return [
    '## Setup',
    '',
    `- command: \`${info.command}\``,
    `- date: ${info.startedAt.toISOString()}`,
    `- machine: ${processors[0]?.model.trim() ?? 'unknown CPU'} × ${processors.length} logical CPUs; ${type()} ${release()}`,
    `- node ${process.version}; servers run with ${info.runtime}`,
    `- pinning: ${info.pinning}`,
    `- Redis: ${info.redis}`,
    `- CPU busy just before the run: ${Math.round(info.cpuBusyBefore * 100)}%${info.cpuBusyBefore > BUSY_MACHINE ? ' — **other work was running; rerun on a quiet machine before comparing**' : ''}`,
    `- revision: ${gitRevision(info.repoRoot)}`,
    `- saturation: autocannon, ${load.connections} closed-loop connections, pipelining 1, ${info.warmupSec} s warm-up then ${load.durationSec} s measured (req/s, p50, p99, CPU)`,
    info.paced === undefined
      ? '- paced: skipped (`--rate 0`)'
      : `- paced: then ${info.paced.ratePerSec} requests/s sent evenly (open loop, undici, at most ${load.connections} connections), 1 s unreported then ${info.paced.durationSec} s measured (paced p99, paced max)`,
    info.repeat > 1
      ? `- trials: ${info.repeat} per row, in interleaved rounds; each row shows the median of each measure over its trials (paced max: the largest)`
      : '- trials: 1 per row (`--repeat n` takes the median of n interleaved trials)',
    '- latency: from sending a request to the end of its response, 2xx only, µs resolution',
    '- CPU µs/req: user + system CPU time of the row\'s process (all threads, and any child processes) over the saturation measurement, from /proc/<pid>/stat, divided by the requests completed; the proxy\'s own, not the upstream\'s or Redis\'s (the upstream row: the upstream\'s). core busy: that CPU time over the wall time (100% = one core)',
    `- Redis per request: \`INFO commandstats\` of the bench's Redis before and after the ${info.paced === undefined ? 'saturation measurement (requests in flight when it stops are not in the count)' : 'paced measurement (every request it sent is answered before the count)'}, over the requests sent; commandstats also count what a script runs, so the round trips are the script calls`,
    '- peak RSS: VmHWM of the row\'s process (and children) from /proc/<pid>/status at the end of the trial',
    '- other CPU: share of all CPU time used by processes outside the bench while the row was measured at saturation',
    `- rows: ${rows.map((row) => `**${row.name}** — ${row.description}`).join('; ')}`,
  ].join('\n');
}

function gitRevision(repoRoot: string): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bench', 'lua', 'package.json'], {
      cwd: repoRoot,
      encoding: 'utf8',
    }).trim();
    return dirty === '' ? commit : `${commit} with uncommitted changes`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}


const perSec = (value: number): string => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '—');
const percent = (value: number | undefined): string => (value === undefined || !Number.isFinite(value) ? '—' : `${Math.round(value * 100)}%`);
const known = (value: number | undefined): value is number => value !== undefined && Number.isFinite(value);
const ms = (value: number | undefined): string => (known(value) ? value.toFixed(2) : '—');
const signedMs = (value: number | undefined): string => (known(value) ? `${value >= 0 ? '+' : ''}${value.toFixed(2)} ms` : '—');
const ratio = (value: number | undefined): string => (known(value) ? value.toFixed(2) : '—');
const micros = (value: number | undefined): string => (known(value) ? value.toFixed(0) : '—');
const mib = (value: number | undefined): string => (known(value) ? value.toFixed(0) : '—');
