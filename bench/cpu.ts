import { cpus } from 'node:os';
import { processCpuMs } from './proc.js';

/**
 * How much of the machine the bench had to itself. The load generator and the
 * servers share the CPUs, so any other work during a row lowers that row
 * alone; these measurements let the report say so.
 */

/** Busy and total CPU time of all CPUs since boot, in milliseconds. */
function machineTimesMs(): { busy: number; all: number } {
  let busy = 0;
  let all = 0;
  for (const { times } of cpus()) {
    const sum = times.user + times.nice + times.sys + times.irq + times.idle;
    all += sum;
    busy += sum - times.idle;
  }
  return { busy, all };
}

/** Fraction of all CPUs' time (0–1) spent busy during the next `sampleMs`. */
export async function sampleCpuBusy(sampleMs = 1_000): Promise<number> {
  const before = machineTimesMs();
  await new Promise((resolve) => setTimeout(resolve, sampleMs));
  const after = machineTimesMs();
  return after.all === before.all ? 0 : (after.busy - before.busy) / (after.all - before.all);
}

/**
 * Measures, over an interval, the share of the machine's CPU time used by
 * processes other than this one and `pids()` (the bench's children).
 */
export class ForeignCpuMeter {
  private machine = machineTimesMs();
  private own = 0;

  constructor(private readonly pids: () => readonly number[]) {
    this.own = this.ownCpuMs() ?? 0;
  }

  /** Starts a new interval. */
  reset(): void {
    this.machine = machineTimesMs();
    this.own = this.ownCpuMs() ?? 0;
  }

  /** Foreign busy time over the interval as a fraction (0–1) of all CPU time; undefined when unknown. */
  foreignShare(): number | undefined {
    const machine = machineTimesMs();
    const own = this.ownCpuMs();
    const all = machine.all - this.machine.all;
    if (own === undefined || all <= 0) return undefined;
    const foreign = machine.busy - this.machine.busy - (own - this.own);
    return Math.max(0, foreign / all);
  }

  private ownCpuMs(): number | undefined {
    const self = process.cpuUsage();
    let total = (self.user + self.system) / 1000;
    for (const pid of this.pids()) {
      const child = processCpuMs(pid);
      if (child === undefined) return undefined;
      total += child;
    }
    return total;
  }
}
