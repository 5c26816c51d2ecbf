import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * What Linux's /proc says about one process and its descendants: CPU time
 * (user + system, all threads) and peak resident memory. CPU time per request
 * is the bench's most stable measure on a shared machine: other work moves a
 * process's requests/s but not what each request costs it. Every reader
 * returns undefined where /proc is not available (macOS, a process gone).
 *
 * The parsers are pure (tested in test/unit/bench-proc.test.ts); the readers
 * around them do the I/O.
 */

/** utime and stime, in clock ticks, and the parent's pid, from the text of `/proc/<pid>/stat`. */
export interface ProcStat {
  readonly parentPid: number;
  /** User + system CPU time of every thread of the process, in clock ticks (`CLK_TCK` per second). */
  readonly cpuTicks: number;
}

/**
 * Parses `/proc/<pid>/stat` (proc(5)). The command name (field 2) is in
 * parentheses and may itself hold spaces and parentheses, so fields are
 * counted from the last `)`: ppid is field 4, utime field 14, stime field 15.
 */
export function parseProcStat(text: string): ProcStat {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error('not a /proc/<pid>/stat line: no ")" after the command name');
  const fields = text.slice(close + 2).trim().split(' ');
  // fields[0] is field 3 (state).
  const parentPid = Number(fields[1]);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (![parentPid, utime, stime].every(Number.isInteger)) throw new Error('not a /proc/<pid>/stat line: ppid, utime or stime is not an integer');
  return { parentPid, cpuTicks: utime + stime };
}

/** The peak resident set size (`VmHWM`, in KiB) from the text of `/proc/<pid>/status`; undefined when absent (a zombie). */
export function parseVmHwmKiB(text: string): number | undefined {
  const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(text);
  return match === null ? undefined : Number(match[1]);
}

let clockTicksPerSec: number | undefined;

/** `CLK_TCK`: the unit of utime and stime (100 on every common Linux). */
function ticksPerSec(): number {
  if (clockTicksPerSec === undefined) {
    try {
      clockTicksPerSec = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicksPerSec = 100;
    }
  }
  return clockTicksPerSec;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** User + system CPU time of process `pid` (all its threads), in milliseconds; undefined where /proc is not available. */
export function processCpuMs(pid: number): number | undefined {
  const stat = readStat(pid);
  return stat === undefined ? undefined : (stat.cpuTicks / ticksPerSec()) * 1000;
}

/**
 * `pid` and every live descendant of it, `pid` first (one pass over /proc).
 * A gateway that runs part of itself in a child process (a database, a
 * worker process) is measured whole.
 */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [pid];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === undefined) continue;
    const siblings = children.get(stat.parentPid);
    if (siblings === undefined) children.set(stat.parentPid, [Number(entry)]);
    else siblings.push(Number(entry));
  }
  const tree = [pid];
  for (let index = 0; index < tree.length; index++) tree.push(...(children.get(tree[index]!) ?? []));
  return tree;
}

/** CPU time (ms) of each process of `pid`'s tree, by pid; undefined when `pid` itself cannot be read. */
export function treeCpuMs(pid: number): ReadonlyMap<number, number> | undefined {
  const out = new Map<number, number>();
  for (const member of processTree(pid)) {
    const cpu = processCpuMs(member);
    if (cpu !== undefined) out.set(member, cpu);
  }
  return out.has(pid) ? out : undefined;
}

/**
 * CPU time (ms) the tree used between two `treeCpuMs` snapshots. A process
 * that appeared in between counts from zero; one that ended in between is
 * lost (its time is no longer readable).
 */
export function cpuMsBetween(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): number {
  let total = 0;
  for (const [pid, cpu] of after) total += cpu - (before.get(pid) ?? 0);
  return total;
}

/** The peak RSS (`VmHWM`, KiB) of `pid` alone; undefined when it cannot be read. */
export function processPeakRssKiB(pid: number): number | undefined {
  try {
    return parseVmHwmKiB(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Sum of the peak RSS (`VmHWM`, KiB) of `pid` and its live descendants; undefined when `pid` cannot be read. */
export function treePeakRssKiB(pid: number): number | undefined {
  let total: number | undefined;
  for (const member of processTree(pid)) {
    let peak: number | undefined;
    try {
      peak = parseVmHwmKiB(readFileSync(`/proc/${member}/status`, 'utf8'));
    } catch {
      peak = undefined;
    }
    if (member === pid && peak === undefined) return undefined;
    if (peak !== undefined) total = (total ?? 0) + peak;
  }
  return total;
}
