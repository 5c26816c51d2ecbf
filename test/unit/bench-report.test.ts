import { describe, expect, it } from 'vitest';
import type { LoadResult } from '../../bench/measure.js';
import { planPinning, parseCpuList } from '../../bench/pinning.js';
import { cpuMsBetween, parseProcStat, parseVmHwmKiB } from '../../bench/proc.js';
import { commandsBetween, parseCommandStats, scriptCalls } from '../../bench/redis.js';
import { checkTargets, type MeasuredRow } from '../../bench/report.js';
import { cpuUsPerRequest, difference, median, ratioTo } from '../../bench/stats.js';
import { formatCommandMix, medianOf, type Trial } from '../../bench/trial.js';

// The bench's pure parts: /proc and INFO parsing, medians, ratios, target verdicts.
// No timing is measured or asserted here.

describe('parseProcStat', () => {
  it('reads ppid and utime + stime, counting fields after the last ")" of the command name', () => {
    // A command name holding a space and a ")" would shift a naive split by two fields.
    const line = '4242 (node (bench) x) S 17 4242 17 0 -1 4194560 2000 0 0 0 1234 567 0 0 20 0 11 0 99 1000000 5000 18446744073709551615';
    expect(parseProcStat(line)).toEqual({ parentPid: 17, cpuTicks: 1234 + 567 });
  });

  it('rejects text that is not a stat line', () => {
    expect(() => parseProcStat('no parentheses here')).toThrow('no ")"');
    expect(() => parseProcStat('1 (x) S')).toThrow('not an integer');
  });
});

describe('parseVmHwmKiB', () => {
  it('reads the peak RSS line of /proc/<pid>/status', () => {
    expect(parseVmHwmKiB('Name:\tnode\nVmPeak:\t 1200000 kB\nVmHWM:\t  106496 kB\nVmRSS:\t  100000 kB\n')).toBe(106_496);
  });

  it('is undefined without one (a zombie has no memory lines)', () => {
    expect(parseVmHwmKiB('Name:\tnode\nState:\tZ (zombie)\n')).toBeUndefined();
  });
});

describe('cpuMsBetween', () => {
  it('sums the growth of every process, counting a process that appeared from zero', () => {
    const before = new Map([[10, 1_000], [11, 50]]);
    const after = new Map([[10, 1_600], [11, 70], [12, 5]]);
    expect(cpuMsBetween(before, after)).toBe(600 + 20 + 5);
  });
});

describe('median, ratioTo, difference, cpuUsPerRequest', () => {
  it('takes the middle value, or the mean of the middle two, ignoring unknown values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([undefined, 5, Number.NaN])).toBe(5);
    expect(median([undefined])).toBeUndefined();
  });

  it('divides and subtracts only known values, and never by a non-positive reference', () => {
    expect(ratioTo(9_000, 10_000)).toBe(0.9);
    expect(ratioTo(1, 0)).toBeUndefined();
    expect(ratioTo(undefined, 2)).toBeUndefined();
    expect(difference(2.25, 1.5)).toBe(0.75);
    expect(difference(Number.NaN, 1)).toBeUndefined();
  });

  it('turns CPU milliseconds over requests into microseconds per request', () => {
    expect(cpuUsPerRequest(510, 10_000)).toBe(51);
    expect(cpuUsPerRequest(510, 0)).toBeUndefined();
    expect(cpuUsPerRequest(undefined, 10)).toBeUndefined();
  });
});

describe('pinning', () => {
  it('parses taskset CPU lists with ranges', () => {
    expect(parseCpuList('0-2,5, 4')).toEqual([0, 1, 2, 4, 5]);
    expect(() => parseCpuList('a')).toThrow('not a CPU list');
  });

  it('gives the proxy the last CPU and everything else the others, and says why when it cannot', () => {
    expect(planPinning([0, 1], true)).toMatchObject({ inEffect: true, proxyCpus: '1', restCpus: '0' });
    expect(planPinning([0, 1, 2, 3], true)).toMatchObject({ proxyCpus: '3', restCpus: '0,1,2' });
    expect(planPinning([0], true)).toMatchObject({ inEffect: false, summary: 'not pinned (only CPU 0 is available)' });
    expect(planPinning(undefined, true)).toMatchObject({ inEffect: false, summary: 'not pinned (`taskset` is not available)' });
    expect(planPinning([0, 1], false)).toMatchObject({ inEffect: false, summary: 'not pinned (`--no-pin`)' });
  });
});

describe('Redis command counts', () => {
  const info = (evalsha: number, incr: number, infoCalls: number): string =>
    ['# Commandstats', `cmdstat_evalsha:calls=${evalsha},usec=10,usec_per_call=1.00,rejected_calls=0,failed_calls=0`,
      `cmdstat_incr:calls=${incr},usec=5,usec_per_call=0.50,rejected_calls=0,failed_calls=0`,
      `cmdstat_info:calls=${infoCalls},usec=1,usec_per_call=1.00,rejected_calls=0,failed_calls=0`, ''].join('\r\n');

  it('counts calls per command between two INFO commandstats replies, leaving out INFO', () => {
    const delta = commandsBetween(parseCommandStats(info(10, 10, 1)), parseCommandStats(info(110, 110, 2)));
    expect([...delta]).toEqual([['evalsha', 100], ['incr', 100]]);
  });

  it('counts round trips as script calls (what a script runs is counted by Redis too)', () => {
    const mix = [['evalsha', 1], ['incr', 1], ['pttl', 1]] as const;
    expect(scriptCalls(mix)).toBe(1);
    expect(formatCommandMix(mix)).toBe('1.000 script calls; 3.00 commands in all (evalsha 1.00, incr 1.00, pttl 1.00)');
  });
});

function load(requestsPerSec: number, p99Ms: number, maxMs = p99Ms): LoadResult {
  return { requestsPerSec, totalRequests: requestsPerSec * 10, p50Ms: p99Ms / 2, p99Ms, maxMs, non2xx: 0, errors: 0, timeouts: 0, statusCodes: { '200': requestsPerSec * 10 } };
}

function trial(requestsPerSec: number, cpuUs: number, pacedP99Ms: number, rssMiB: number, redisCalls?: number): Trial {
  return {
    warmup: load(requestsPerSec, 5),
    result: load(requestsPerSec, 5),
    paced: load(2_000, pacedP99Ms),
    foreignCpuShare: 0,
    cpuUsPerRequest: cpuUs,
    coreShare: 1,
    peakRssMiB: rssMiB + 150,
    ownPeakRssMiB: rssMiB,
    redisCommandsPerRequest: redisCalls,
    redisCommandMix: redisCalls === undefined ? undefined : [['evalsha', redisCalls]],
    problems: [],
  };
}

function row(name: string, ...trials: Trial[]): MeasuredRow {
  return { name, description: name, trials, ...medianOf(trials), problems: [] };
}

describe('medianOf', () => {
  it('takes each measure’s median over the trials, and the largest paced maximum', () => {
    const trials = [trial(10_000, 50, 1.0, 100), trial(12_000, 70, 3.0, 90), trial(11_000, 60, 2.0, 120)];
    const medians = medianOf([{ ...trials[0]!, paced: load(2_000, 1.0, 40) }, trials[1]!, trials[2]!]);
    expect(medians.result.requestsPerSec).toBe(11_000);
    expect(medians.cpuUsPerRequest).toBe(60);
    expect(medians.paced?.p99Ms).toBe(2.0);
    expect(medians.paced?.maxMs).toBe(40);
    expect(medians.ownPeakRssMiB).toBe(100);
    expect(medians.peakRssMiB).toBe(250);
  });
});

describe('checkTargets', () => {
  const verdicts = (rows: MeasuredRow[]): Record<string, boolean | undefined> =>
    Object.fromEntries(checkTargets(rows, { ratePerSec: 2_000, durationSec: 10 }).map((check) => [check.what, check.met]));

  it('meets every target at the boundaries issue 12 states', () => {
    const result = verdicts([
      row('bare', trial(10_000, 50, 1.0, 100)),
      row('fastify', trial(5_000, 100, 2.0, 110, 1)),
      row('quotagate', trial(9_000, 57.5, 1.5, 200)),
      row('quotagate-redis', trial(8_000, 70, 1.5, 150, 1)),
    ]);
    expect(result).toEqual({
      'quotagate (memory) req/s ÷ bare': true,
      'quotagate (memory) CPU/request ÷ bare': true,
      'quotagate-redis req/s ÷ bare': true,
      'quotagate-redis req/s ÷ fastify': true,
      'quotagate-redis Redis round trips (script calls) per request, and every command Redis ran for it': true,
      "quotagate paced p99 − bare's, at 2,000 req/s": true,
      "quotagate-redis paced p99 − bare's, at 2,000 req/s": true,
      'quotagate slowest paced response': true,
      'quotagate-redis slowest paced response': true,
      'quotagate peak RSS (embedded ledger database)': true,
      'quotagate-redis peak RSS (embedded ledger database)': true,
    });
  });

  it('misses each target just past its boundary, and says "not measured" without the row it divides by', () => {
    const result = verdicts([
      row('bare', trial(10_000, 50, 1.0, 100)),
      row('quotagate', { ...trial(8_999, 57.6, 1.51, 201), paced: load(2_000, 1.51, 10.01) }),
      row('quotagate-redis', trial(7_999, 70, 1.0, 150, 2)),
    ]);
    expect(result).toMatchObject({
      'quotagate (memory) req/s ÷ bare': false,
      'quotagate (memory) CPU/request ÷ bare': false,
      'quotagate-redis req/s ÷ bare': false,
      'quotagate-redis req/s ÷ fastify': undefined,
      'quotagate-redis Redis round trips (script calls) per request, and every command Redis ran for it': false,
      "quotagate paced p99 − bare's, at 2,000 req/s": false,
      'quotagate slowest paced response': false,
      'quotagate peak RSS (embedded ledger database)': false,
    });
  });
});
