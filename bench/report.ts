import { execFileSync } from 'node:child_process';
import { cpus, release, type } from 'node:os';
import type { LoadOptions, LoadResult } from './measure.js';
import type { Trial } from './trial.js';

/**
 * The bench report: one markdown table of the rows, the ratios that the
 * design's targets are stated in, and what a reader needs to reproduce the
 * run. The same text is printed and written to bench/last-run.md.
 */

/** quotagate's throughput must be at least this fraction of the bare proxy's (DESIGN.md §1). */
export const MIN_THROUGHPUT_RATIO = 0.8;
/** quotagate may add at most this much p99 latency over the bare proxy, at moderate load (DESIGN.md §1). */
export const MAX_ADDED_P99_MS = 2;

/** Above this share of CPU time used by other processes, the report warns that other work skews the rows. */
export const BUSY_MACHINE = 0.1;

/** One row of the report: a target's trials and their median. */
export interface MeasuredRow {
  readonly name: string;
  readonly description: string;
  readonly trials: readonly Trial[];
  /** The median of the trials (the trial itself when there is one). */
  readonly result: LoadResult;
  /** Median share (0–1) of the machine's CPU time used by processes outside the bench while the row was measured. */
  readonly foreignCpuShare: number | undefined;
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
  lines.push(renderTable(rows), '', renderRatios(rows, info), '');
  if (info.repeat > 1) lines.push(renderTrials(rows), '');
  lines.push(renderSetup(rows, info));
  return lines.join('\n') + '\n';
}

function renderTable(rows: readonly MeasuredRow[]): string {
  const out = [
    '| target | requests/s (avg) | p50 ms | p99 ms | non-2xx | errors | other CPU |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const { name, result, foreignCpuShare } of rows) {
    out.push(`| ${name} | ${perSec(result.requestsPerSec)} | ${ms(result.p50Ms)} | ${ms(result.p99Ms)} | ${result.non2xx} | ${result.errors} | ${percent(foreignCpuShare)} |`);
  }
  return out.join('\n');
}

function renderTrials(rows: readonly MeasuredRow[]): string {
  const out = ['Each trial (requests/s, p99 ms, other CPU), in the order run:', ''];
  for (const row of rows) {
    const trials = row.trials.map(({ result, foreignCpuShare }) => `${perSec(result.requestsPerSec)} / ${ms(result.p99Ms)} / ${percent(foreignCpuShare)}`);
    out.push(`- ${row.name}: ${trials.join(' · ')}`);
  }
  return out.join('\n');
}

function renderRatios(rows: readonly MeasuredRow[], info: RunInfo): string {
  const byName = new Map(rows.map((row) => [row.name, row.result]));
  const upstream = byName.get('upstream');
  const bare = byName.get('bare');
  const out = ['| ratio | value | target |', '| --- | ---: | --- |'];
  if (upstream !== undefined && bare !== undefined) {
    out.push(`| bare / upstream (throughput) | ${ratio(bare.requestsPerSec / upstream.requestsPerSec)} | — (the cost of any Node proxy hop) |`);
  }
  const saturated = info.load.ratePerSec === undefined;
  for (const row of rows) {
    if (row.name === 'upstream' || row.name === 'bare' || bare === undefined) continue;
    const throughput = row.result.requestsPerSec / bare.requestsPerSec;
    const addedP99 = row.result.p99Ms - bare.p99Ms;
    const addedP50 = row.result.p50Ms - bare.p50Ms;
    out.push(
      `| ${row.name} / bare (throughput) | ${ratio(throughput)} | ${saturated ? `≥ ${ratio(MIN_THROUGHPUT_RATIO)}: ${verdict(throughput >= MIN_THROUGHPUT_RATIO)}` : '— (paced run: every row is offered the same rate)'} |`,
      `| ${row.name} added p99 over bare | ${signedMs(addedP99)} | < ${MAX_ADDED_P99_MS} ms at moderate load: ${verdict(addedP99 < MAX_ADDED_P99_MS)}${saturated ? ' (this run is at saturation: see README)' : ''} |`,
      `| ${row.name} added p50 over bare | ${signedMs(addedP50)} | — |`,
    );
  }
  return out.length > 2 ? out.join('\n') : '_No ratios: run at least `upstream` and `bare`, or `bare` and a gateway._';
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
    `- node ${process.version}; servers run with ${info.runtime}; the servers and the load generator share these CPUs`,
    `- CPU busy just before the run: ${Math.round(info.cpuBusyBefore * 100)}%${info.cpuBusyBefore > BUSY_MACHINE ? ' — **other work was running; rerun on a quiet machine before comparing**' : ''}`,
    `- revision: ${gitRevision(info.repoRoot)}`,
    load.ratePerSec === undefined
      ? `- load: saturation — autocannon, ${load.connections} closed-loop connections, pipelining 1, ${info.warmupSec} s warm-up then ${load.durationSec} s measured`
      : `- load: paced — ${load.ratePerSec} requests/s sent evenly (open loop, undici, at most ${load.connections} connections), ${info.warmupSec} s warm-up then ${load.durationSec} s measured`,
    info.repeat > 1
      ? `- trials: ${info.repeat} per row, in interleaved rounds; each row shows the median trial (throughput, p50, p99 and other CPU each the median)`
      : '- trials: 1 per row (`--repeat n` takes the median of n interleaved trials)',
    '- latency: from sending a request to the end of its response, 2xx only, µs resolution',
    '- other CPU: share of all CPU time used by processes outside the bench while the row was measured',
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
const percent = (value: number | undefined): string => (value === undefined ? '—' : `${Math.round(value * 100)}%`);
const ms = (value: number): string => (Number.isFinite(value) ? value.toFixed(2) : '—');
const signedMs = (value: number): string => (Number.isFinite(value) ? `${value >= 0 ? '+' : ''}${value.toFixed(2)} ms` : '—');
const ratio = (value: number): string => (Number.isFinite(value) ? value.toFixed(2) : '—');
const verdict = (met: boolean): string => (met ? 'met' : '**missed**');
