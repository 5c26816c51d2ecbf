import { describe, expect, it } from 'vitest';
import { judgeReplica, type ReplicaReading, type ReplicaVerdict, UNCHECKED } from '../../src/db/replica-lag.js';
import { replicaCheckIntervalMs } from '../../src/db/replica-monitor.js';

/** judgeReplica: what one reading of a replica means for key lookups (src/db/replica-lag.ts). */

const MAX_LAG_MS = 1_000;
const standby = (caughtUp: boolean, replayAgeMs: number | null): ReplicaReading => ({ kind: 'standby', caughtUp, replayAgeMs });
const fresh = (caughtUpAtMs: number): ReplicaVerdict => ({ state: 'fresh', lagMs: 0, caughtUpAtMs });

describe('judgeReplica', () => {
  it('calls a caught-up standby fresh with no lag, however old its last replayed transaction (an idle primary)', () => {
    expect(judgeReplica(standby(true, 3_600_000), UNCHECKED, 50_000, MAX_LAG_MS)).toEqual({ state: 'fresh', lagMs: 0, caughtUpAtMs: 50_000 });
    expect(judgeReplica(standby(true, null), UNCHECKED, 7, MAX_LAG_MS)).toEqual({ state: 'fresh', lagMs: 0, caughtUpAtMs: 7 });
  });

  it('bounds the lag of a standby that is behind by the time since it was last caught up, when that is smaller than its replay age', () => {
    // Idle for an hour, then one write not yet replayed: 400 ms since the last check found it caught up.
    expect(judgeReplica(standby(false, 3_600_000), fresh(10_000), 10_400, MAX_LAG_MS)).toEqual({
      state: 'fresh',
      lagMs: 400,
      caughtUpAtMs: 10_000,
    });
    expect(judgeReplica(standby(false, 3_600_000), fresh(10_000), 11_001, MAX_LAG_MS)).toEqual({
      state: 'lagging',
      lagMs: 1_001,
      caughtUpAtMs: 10_000,
    });
  });

  it('bounds it by the replay age when that is smaller (a busy primary: the replica is never quite caught up)', () => {
    expect(judgeReplica(standby(false, 30), fresh(0), 60_000, MAX_LAG_MS)).toEqual({ state: 'fresh', lagMs: 30, caughtUpAtMs: 0 });
    expect(judgeReplica(standby(false, 1_500), fresh(0), 60_000, MAX_LAG_MS)).toMatchObject({ state: 'lagging', lagMs: 1_500 });
  });

  it('allows exactly replica_max_lag_ms, not a millisecond more', () => {
    expect(judgeReplica(standby(false, MAX_LAG_MS), UNCHECKED, 0, MAX_LAG_MS).state).toBe('fresh');
    expect(judgeReplica(standby(false, MAX_LAG_MS + 1), UNCHECKED, 0, MAX_LAG_MS).state).toBe('lagging');
  });

  it('calls a standby lagging when neither bound is known (never caught up, nothing replayed)', () => {
    expect(judgeReplica(standby(false, null), UNCHECKED, 0, MAX_LAG_MS)).toEqual({ state: 'lagging', lagMs: undefined, caughtUpAtMs: undefined });
  });

  it('calls an unreachable replica down and a server not in recovery not_in_recovery, with no lag', () => {
    expect(judgeReplica({ kind: 'unreachable', error: new Error('ECONNREFUSED') }, fresh(5), 9, MAX_LAG_MS)).toEqual({
      state: 'down',
      lagMs: undefined,
      caughtUpAtMs: 5,
    });
    expect(judgeReplica({ kind: 'not_in_recovery' }, fresh(5), 9, MAX_LAG_MS)).toEqual({
      state: 'not_in_recovery',
      lagMs: undefined,
      caughtUpAtMs: undefined,
    });
  });

  it('keeps the previous verdict when only the primary did not answer, unless the replica had been down', () => {
    const primaryDown: ReplicaReading = { kind: 'primary_unreachable', error: new Error('ECONNREFUSED') };
    const previous: ReplicaVerdict = { state: 'fresh', lagMs: 12, caughtUpAtMs: 3 };
    expect(judgeReplica(primaryDown, previous, 9_999, MAX_LAG_MS)).toBe(previous);
    expect(judgeReplica(primaryDown, { state: 'down', lagMs: undefined, caughtUpAtMs: 3 }, 9_999, MAX_LAG_MS)).toBe(UNCHECKED);
  });
});

describe('replicaCheckIntervalMs', () => {
  it('checks every half of the allowed lag, between 50 ms and one second', () => {
    expect([10, 100, 300, 1_000, 2_000, 60_000].map(replicaCheckIntervalMs)).toEqual([50, 50, 150, 500, 1_000, 1_000]);
  });
});
