import { execFileSync } from 'node:child_process';

/**
 * CPU pinning with `taskset`: the proxy being measured runs alone on one CPU,
 * and everything else the bench runs (this process, which is the load
 * generator; the upstream; the bench's Redis) on the others. Then the proxy's
 * requests/s is bounded by its own CPU, not by a load generator competing for
 * the same core. On a shared machine other work still lands on both CPUs:
 * pinning keeps the bench's own processes apart, nothing more.
 */

export interface Pinning {
  /** Whether the bench's processes are pinned. */
  readonly inEffect: boolean;
  /** The proxy's CPU list for `taskset -c`, when in effect. */
  readonly proxyCpus?: string;
  /** Everything else's CPU list, when in effect. */
  readonly restCpus?: string;
  /** One sentence for the report: what is pinned where, or why nothing is. */
  readonly summary: string;
}

/**
 * Parses a CPU list as `taskset -pc` prints it (`0,1`, `0-3,8`) into CPU
 * numbers, ascending and without repeats.
 */
export function parseCpuList(list: string): number[] {
  const cpus = new Set<number>();
  for (const part of list.trim().split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (match === null) throw new Error(`not a CPU list: "${list}"`);
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : Number(match[2]);
    for (let cpu = from; cpu <= to; cpu++) cpus.add(cpu);
  }
  return [...cpus].sort((a, b) => a - b);
}

/**
 * Decides the pinning from the CPUs this process may run on: the proxy gets
 * the last one, the rest the others. Needs `taskset` and at least two CPUs.
 */
export function planPinning(allowedCpus: readonly number[] | undefined, requested: boolean): Pinning {
  if (!requested) return { inEffect: false, summary: 'not pinned (`--no-pin`)' };
  if (allowedCpus === undefined) return { inEffect: false, summary: 'not pinned (`taskset` is not available)' };
  if (allowedCpus.length < 2) return { inEffect: false, summary: `not pinned (only CPU ${allowedCpus.join(',')} is available)` };
  const proxy = allowedCpus.at(-1)!;
  const rest = allowedCpus.slice(0, -1).join(',');
  return {
    inEffect: true,
    proxyCpus: String(proxy),
    restCpus: rest,
    summary: `pinned with taskset: the proxy being measured on CPU ${proxy}; the load generator, the upstream and the bench's Redis on CPU ${rest}`,
  };
}

/** The CPUs this process may run on (`taskset -pc`), or undefined when `taskset` does not run. */
export function allowedCpus(): number[] | undefined {
  try {
    const out = execFileSync('taskset', ['-pc', String(process.pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const list = out.slice(out.lastIndexOf(':') + 1);
    return parseCpuList(list);
  } catch {
    return undefined;
  }
}

/** Pins every thread of this process (the bench runner and its load generator) to `cpus`. */
export function pinThisProcess(cpus: string): void {
  execFileSync('taskset', ['-a', '-pc', cpus, String(process.pid)], { stdio: 'ignore' });
}
