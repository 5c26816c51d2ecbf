import type { Queryable } from './database.js';

/**
 * How far a streaming replica is behind its primary, read from both servers.
 *
 * The replica's own measure is `now() - pg_last_xact_replay_timestamp()`:
 * the age of the last transaction it replayed. On a primary that has
 * committed nothing for a while that age grows although the replica has
 * everything, so the primary's WAL position is read first
 * (`pg_current_wal_lsn()`) and a replica whose replay position
 * (`pg_last_wal_replay_lsn()`) has reached it is caught up: no lag at all.
 * Comparing with the primary, rather than the replica's received and
 * replayed positions, also sees a replica whose WAL stream broke off: it
 * has replayed all it received, yet the primary has moved on.
 */

/** One look at the replica. */
export type ReplicaReading =
  /** In recovery (a standby). `replayAgeMs` is null when it has replayed no transaction since it started. */
  | { readonly kind: 'standby'; readonly caughtUp: boolean; readonly replayAgeMs: number | null }
  /** Answers, but is not in recovery: a primary (promoted, or the primary itself), whose lag cannot be measured. */
  | { readonly kind: 'not_in_recovery' }
  /** The replica did not answer. */
  | { readonly kind: 'unreachable'; readonly error: unknown }
  /** The replica answered, the primary did not: the replica's position cannot be compared. */
  | { readonly kind: 'primary_unreachable'; readonly error: unknown };

const PRIMARY_POSITION = 'SELECT pg_current_wal_lsn()::text AS lsn';
// $1: the primary's position, read just before. Every function here may be run by any role.
const REPLICA_POSITION = `
SELECT pg_is_in_recovery() AS in_recovery,
       COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) AS caught_up,
       (EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000)::float8 AS replay_age_ms`;

/** Reads the primary's WAL position, then the replica's state against it: two statements, one on each. */
export async function readReplicaLag(replica: Queryable, primary: Queryable): Promise<ReplicaReading> {
  let primaryLsn: string;
  try {
    primaryLsn = (await primary.query<{ lsn: string }>(PRIMARY_POSITION))[0]!.lsn;
  } catch (error) {
    // Still ask the replica: a replica that is down is worth knowing about either way.
    try {
      const row = (await replica.query<{ in_recovery: boolean }>('SELECT pg_is_in_recovery() AS in_recovery'))[0]!;
      return row.in_recovery ? { kind: 'primary_unreachable', error } : { kind: 'not_in_recovery' };
    } catch (replicaError) {
      return { kind: 'unreachable', error: replicaError };
    }
  }
  let row: { in_recovery: boolean; caught_up: boolean; replay_age_ms: number | null };
  try {
    row = (await replica.query<typeof row>(REPLICA_POSITION, [primaryLsn]))[0]!;
  } catch (error) {
    return { kind: 'unreachable', error };
  }
  if (!row.in_recovery) return { kind: 'not_in_recovery' };
  return { kind: 'standby', caughtUp: row.caught_up, replayAgeMs: row.replay_age_ms === null ? null : Math.max(0, row.replay_age_ms) };
}

/** Whether key lookups may go to the replica, and why not. */
export type ReplicaState = 'fresh' | 'lagging' | 'down' | 'not_in_recovery' | 'unchecked';

/** What one check concluded. */
export interface ReplicaVerdict {
  readonly state: ReplicaState;
  /** The lag the check found, in ms; undefined when it could not be measured (down, not in recovery, unchecked). */
  readonly lagMs: number | undefined;
  /** The monotonic time (ms) of the last check that found the replica caught up; undefined: never. */
  readonly caughtUpAtMs: number | undefined;
}

export const UNCHECKED: ReplicaVerdict = { state: 'unchecked', lagMs: undefined, caughtUpAtMs: undefined };

/**
 * The verdict of one reading after the `previous` verdict; `nowMs` is the
 * monotonic time at which the reading began (when the primary's position
 * was read).
 *
 * The lag of a standby is 0 when it is caught up; otherwise the smaller of
 * two upper bounds of how stale it is: the age of its last replayed
 * transaction, and the time since a check last found it caught up (it then
 * had everything). Both only ever overstate, so a replica is never judged
 * fresher than it is; on a primary that writes rarely, a check that lands
 * while a write streams can overstate for that one check.
 *
 * A reading whose primary did not answer keeps the previous verdict: a
 * primary that is down commits nothing, so the replica falls no further
 * behind, and it may be the only database left to answer lookups.
 */
export function judgeReplica(reading: ReplicaReading, previous: ReplicaVerdict, nowMs: number, maxLagMs: number): ReplicaVerdict {
  switch (reading.kind) {
    case 'unreachable':
      return { state: 'down', lagMs: undefined, caughtUpAtMs: previous.caughtUpAtMs };
    case 'not_in_recovery':
      return { state: 'not_in_recovery', lagMs: undefined, caughtUpAtMs: undefined };
    case 'primary_unreachable':
      return previous.state === 'down' || previous.state === 'not_in_recovery' ? UNCHECKED : previous;
    case 'standby': {
      if (reading.caughtUp) return { state: 'fresh', lagMs: 0, caughtUpAtMs: nowMs };
      const bounds = [reading.replayAgeMs, previous.caughtUpAtMs === undefined ? null : nowMs - previous.caughtUpAtMs];
      const known = bounds.filter((bound): bound is number => bound !== null);
      if (known.length === 0) return { state: 'lagging', lagMs: undefined, caughtUpAtMs: previous.caughtUpAtMs };
      const lagMs = Math.min(...known);
      return { state: lagMs <= maxLagMs ? 'fresh' : 'lagging', lagMs, caughtUpAtMs: previous.caughtUpAtMs };
    }
  }
}
