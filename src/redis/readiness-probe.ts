import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Cluster, type Redis } from 'ioredis';
import type { Clock } from '../core/clock.js';
import type { StoreReadiness } from '../core/readiness.js';
import type { UsageHistory } from '../core/usage-ledger.js';
import type { RedisClient } from './client.js';
import { classifyRedisError, type RedisErrorKind } from './error-kinds.js';
import { readinessScratchKey, readinessStateKey } from './keys.js';
import { evictionRisk, type MaxmemoryPolicy, maxmemoryPolicyOf } from './maxmemory-policy.js';
import { luaDirectory } from './scripts.js';

/** How one probe ended: `ok`, a Redis error kind, or `ledger_unavailable` (Redis lost its counters and the ledger cannot restore them). */
export type ProbeResult = 'ok' | RedisErrorKind | 'ledger_unavailable';

/** What one probe found; handed to `onReport` for the metrics and the log. */
export interface ProbeReport {
  readonly result: ProbeResult;
  readonly readiness: StoreReadiness;
  /** `maxmemory-policy` of each primary in use (`unknown` where INFO was refused or failed). */
  readonly policies: readonly MaxmemoryPolicy[];
  /** The probe's state key was gone although this instance had seen it: Redis lost its data since the previous probe. */
  readonly emptied: boolean;
  /** The failure behind a result other than `ok`. */
  readonly error?: unknown;
}

export interface ReadinessProbeOptions {
  /** The client the limiter uses: the probe tests the very connection requests take. */
  readonly client: RedisClient;
  /** `store.redis.key_prefix`: the probe's keys live under it, where the ACL must allow the gateway. */
  readonly keyPrefix: string;
  /** Pause between the end of one probe and the start of the next, in ms (`store.redis.probe_interval_ms`). */
  readonly intervalMs: number;
  /** The ledger that restores counters Redis lost; absent without a database. */
  readonly ledger?: UsageHistory;
  readonly clock: Clock;
  readonly onReport?: (report: ProbeReport) => void;
}

/** How long the probe's state key outlives the last probe, in ms: any gap between probes is far shorter. */
const PROBE_STATE_TTL_MS = 86_400_000;

/** The subject whose ledger rows the probe reads to learn that the ledger answers; no real subject has rows under it. */
const LEDGER_PROBE_SUBJECT = 'quotagate:readiness-probe';


/**
 * Checks, every `intervalMs` and never on the request path, that Redis would
 * serve the gateway's requests now, so `/readyz` takes an instance out of a
 * load balancer before its clients see errors and puts it back when Redis
 * works again, with no request traffic needed either way:
 *
 * 1. `EVALSHA` is permitted (ioredis runs every script with it): the probe
 *    runs lua/probe.lua by its sha, as ioredis runs the gateway's scripts;
 * 2. `EVAL` of it is permitted (sent when Redis answers NOSCRIPT, after a
 *    restart or a flush, as ioredis does), and the script runs every command the gateway's scripts
 *    run, with writes, on keys under the prefix: an ACL that refuses one, or
 *    a Redis at maxmemory under `noeviction`, fails the probe as it would
 *    fail a request, and the reason names the refused command;
 * 3. Redis still holds the counters, or they may be used anyway: when the
 *    probe's state key is gone (a restart without persistence, a flush, a
 *    failover to an empty node), counters must be restored from the ledger
 *    before they are trusted, so until one ledger read succeeds the store is
 *    down (`ledger_unavailable`); without a ledger the counters simply
 *    start at zero. The mark is shared by every instance on that Redis.
 *
 * Each probe also reads `maxmemory-policy` from `INFO memory` of every
 * primary: a policy that can evict counters is a warning, not a failure. A
 * probe's commands are bounded by the client's command timeout.
 *
 * On a Cluster the script runs on the primary of the probe's slot; the
 * policy is read from every primary.
 */
export class RedisReadinessProbe {
  readonly #options: ReadinessProbeOptions;
  readonly #script: string;
  /** SHA-1 of the script: what EVALSHA names it by. */
  readonly #sha: string;
  #readiness: StoreReadiness = { state: 'unknown', warnings: [] };
  #seenState = false;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<ProbeReport> | undefined;
  #stopped = false;

  constructor(options: ReadinessProbeOptions) {
    this.#options = options;
    this.#script = readFileSync(resolve(luaDirectory(), 'probe.lua'), 'utf8');
    this.#sha = createHash('sha1').update(this.#script).digest('hex');
  }

  /** What the last probe found (`unknown` before the first answered). */
  get readiness(): StoreReadiness {
    return this.#readiness;
  }

  /** Probes now, then every `intervalMs` after each probe ends. Resolves with the first report. */
  start(): Promise<ProbeReport> {
    const first = this.probeOnce();
    void first.finally(() => this.#schedule());
    return first;
  }

  /** Stops probing; resolves once a probe in flight has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running?.catch(() => undefined);
  }

  /** Runs one probe (or joins the one in flight) and records its verdict. Never rejects. */
  probeOnce(): Promise<ProbeReport> {
    this.#running ??= this.#probe().finally(() => (this.#running = undefined));
    return this.#running;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.probeOnce().finally(() => this.#schedule()), this.#options.intervalMs);
    this.#timer.unref();
  }

  async #probe(): Promise<ProbeReport> {
    const policies = await this.#readPolicies();
    const warnings = [...new Set(policies.map(evictionRisk).filter((risk) => risk !== undefined))];
    let emptied = false;
    const finish = (failure?: ProbeFailure): ProbeReport => {
      const report: ProbeReport =
        failure === undefined
          ? { result: 'ok', readiness: { state: 'up', warnings }, policies, emptied }
          : { result: failure.result, readiness: { state: 'down', reason: failure.reason, warnings }, policies, emptied, error: failure.error };
      this.#readiness = report.readiness;
      this.#options.onReport?.(report);
      return report;
    };
    try {
      const state = await this.#runScript(false);
      if (state.refused !== '') return finish(scriptRefusal(state.refused, state.message));
      emptied = this.#seenState && !state.existed;
      this.#seenState = true;
      if (!state.restorable) {
        const ledgerError = await this.#ledgerReadable();
        if (ledgerError !== undefined) {
          return finish({
            result: 'ledger_unavailable',
            reason: `ledger_unavailable: Redis has lost its counters (a restart without persistence, a flush or a failover to an empty node) and the usage ledger cannot be read to restore them: ${messageOf(ledgerError)}`,
            error: ledgerError,
          });
        }
        const marked = await this.#runScript(true);
        if (marked.refused !== '') return finish(scriptRefusal(marked.refused, marked.message));
      }
      return finish();
    } catch (error) {
      const kind = classifyRedisError(error);
      return finish({ result: kind, reason: `${kind}: ${messageOf(error)}`, error });
    }
  }

  /**
   * One run of lua/probe.lua: EVALSHA, then EVAL when Redis has not got it
   * (NOSCRIPT, only after a restart or a flush: the probe never inflates
   * `quotagate_redis_noscript_errors` otherwise). Rejects only for a failure
   * outside the script (connection, timeout, EVALSHA or EVAL refused).
   */
  async #runScript(markRestorable: boolean): Promise<{ existed: boolean; restorable: boolean; refused: string; message: string }> {
    const { client, keyPrefix } = this.#options;
    const args = [2, readinessStateKey(keyPrefix), readinessScratchKey(keyPrefix), PROBE_STATE_TTL_MS, markRestorable ? 1 : 0] as const;
    let reply: unknown;
    try {
      reply = await client.evalsha(this.#sha, ...args);
    } catch (error) {
      if (!messageOf(error).startsWith('NOSCRIPT')) throw error;
      reply = await client.eval(this.#script, ...args);
    }
    if (!Array.isArray(reply) || reply.length !== 4) throw new Error(`unexpected reply from probe.lua: ${JSON.stringify(reply)?.slice(0, 200)}`);
    const [existed, restorable, refused, message] = reply as [unknown, unknown, unknown, unknown];
    return { existed: existed === 1, restorable: restorable === 1, refused: String(refused), message: String(message) };
  }

  /** Undefined when the ledger answers a read (the one hydration makes), else the failure. */
  async #ledgerReadable(): Promise<unknown> {
    const { ledger, clock } = this.#options;
    if (ledger === undefined) return undefined;
    try {
      await ledger.readUsageSince(LEDGER_PROBE_SUBJECT, clock.now());
      return undefined;
    } catch (error) {
      return error ?? new Error('ledger read failed');
    }
  }

  /** `maxmemory-policy` of every ready primary; `unknown` where INFO is refused or fails. Never rejects. */
  async #readPolicies(): Promise<MaxmemoryPolicy[]> {
    const { client } = this.#options;
    const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
    return Promise.all(
      nodes.map((node) =>
        node.status === 'ready'
          ? node.info('memory').then(maxmemoryPolicyOf, () => 'unknown' as const)
          : Promise.resolve('unknown' as const),
      ),
    );
  }
}

interface ProbeFailure {
  readonly result: Exclude<ProbeResult, 'ok'>;
  /** For `/readyz`: the kind, the check that failed and Redis's own words. */
  readonly reason: string;
  readonly error: unknown;
}

/** The failure of a command refused inside lua/probe.lua: its kind, and a reason naming the command. */
function scriptRefusal(command: string, message: string): ProbeFailure {
  const error = new Error(message);
  const kind = classifyRedisError(error);
  return { result: kind, reason: `${kind}: Redis refused ${command} inside the gateway's scripts: ${message}`, error };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
