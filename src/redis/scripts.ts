import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Result } from 'ioredis';
import type { ChargeReceipt, Decision, PolicyState } from '../core/decision.js';
import { periodOf } from '../core/calendar.js';
import { denialOf } from '../core/denial.js';
import { policyStateAt } from '../core/policy-state.js';
import type { CreditGrantState, CreditState } from '../core/credits.js';
import type { Meter, Policy } from '../core/policy.js';
import type { RedisClient } from './client.js';
import { chargeRecordsKeyPrefix, counterKey, creditBalanceKey, eventStreamKey, hydrationMarkerKey, usageIndexKey, usageMarkerKey } from './keys.js';

/**
 * The scripts of lua/, registered on a client with ioredis `defineCommand`:
 * ioredis sends EVALSHA (EVAL the first time on each connection) and, on
 * NOSCRIPT, reloads the script by itself. Their KEYS, ARGV and replies are
 * documented in each file's header; this module is the only code that knows
 * those layouts.
 */
declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** lua/consume.lua; parse the reply with parseConsumeReply. */
    quotagateConsume(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Result<unknown, Context>;
    /** lua/consume.lua with bulk strings answered as Buffers (an Idempotency-Key replay's body). */
    quotagateConsumeBuffer(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Result<unknown, Context>;
    /** lua/settle-idempotency.lua; replies 1 if the record was settled. */
    quotagateSettleIdempotency(numberOfKeys: number, ...keysThenArgs: Array<string | number | Buffer>): Result<unknown, Context>;
    /** lua/refund.lua (a signed adjustment of a charge); replies how many counters were adjusted. */
    quotagateRefund(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Result<unknown, Context>;
    /** lua/peek.lua; parse the reply with parsePeekReply. */
    quotagatePeek(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Result<unknown, Context>;
    /** lua/hydrate.lua; replies how many counters were raised. */
    quotagateHydrate(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Result<unknown, Context>;
    /** lua/undo-charge.lua; replies how many counters were refunded, -1 when the request id charged nothing. */
    quotagateUndoCharge(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Result<unknown, Context>;
    /** lua/reset-counters.lua; replies the version the reset took, or 0. */
    quotagateResetCounters(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Result<unknown, Context>;
    /** lua/add-credits.lua; replies how many grants were written. */
    quotagateAddCredits(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Result<unknown, Context>;
    /** lua/clear-usage-marker.lua; replies 1 if the marker was deleted. */
    quotagateClearUsageMarker(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Result<unknown, Context>;
  }
}

/** How long a counter outlives the end of its period, in ms (clock skew, slow replicas). */
export const COUNTER_EXPIRY_GRACE_MS = 60_000;

/** What consume.lua decides: the fields of a limiter's ConsumeRequest. */
export interface ConsumeScriptInput {
  readonly subject: string;
  readonly policies: readonly Policy[];
  /** Charged with the policies when admitted, never limiting; default none. */
  readonly meters?: readonly Meter[];
  /** Units to charge every policy; a positive integer. */
  readonly cost: number;
  /**
   * Names this call's charge, so that it can be undone if its reply is lost
   * (runUndoChargeScript); unique per call. Default: a random UUID.
   */
  readonly requestId?: string;
  /** The minute (chargeMinuteOf) whose charge records get this call's. Default: the current one. */
  readonly chargeMinute?: number;
  /** The plan's name, which events carry (null in them when absent). */
  readonly plan?: string;
}

export interface ConsumeScriptOptions {
  /** Key prefix (`store.redis.key_prefix`). */
  readonly keyPrefix: string;
  /** How long an admission's in-flight mark on its Idempotency-Key lives, in ms. */
  readonly inFlightTtlMs: number;
  /** Tests only: the epoch ms the script uses instead of Redis TIME. */
  readonly nowOverrideMs?: number;
  /**
   * A ledger backs the counters: refuse to decide until the subject was
   * hydrated, and mark what each charge changed. Default false.
   */
  readonly trackUsage?: boolean;
  /** On a Redis Cluster, the slot of the subject's keys (its usage index is that slot's); absent on one Redis. */
  readonly slot?: number;
  /** Keeps the keys and policy arguments of recent subjects' calls (one per limiter: they depend on keyPrefix, slot and events). */
  readonly callParts?: ConsumeCallParts;
  /**
   * Detect quota events of policies with thresholds (and of credits) and
   * append them to the event stream of the subject's slot (eventStreamKey),
   * trimmed to about `streamMaxLength` entries. Absent: no events, and the
   * call is what it was without them.
   */
  readonly events?: { readonly streamMaxLength: number };
}

/** What every consume.lua call of one subject with one list of policies and meters shares. */
interface CallParts {
  readonly meters: readonly Meter[];
  /** The plan named in the events (the `e` option), when events are on. */
  readonly plan: string | undefined;
  /** Events are on: the subject is the call's last ARGV. */
  readonly events: boolean;
  /** KEYS[1..n+3]: the counters, the usage marker, the hydration marker, the usage index. */
  readonly keys: readonly string[];
  /** KEYS[n+4] but its minute. */
  readonly chargeRecordsKeyPrefix: string;
  /** KEYS[n+5 .. n+4+k]: the options' keys (the credit balance and its spend counter; the event stream), none without credits or events. */
  readonly optionKeys: readonly string[];
  /** Whether a policy is covered by credits: the reply then ends with the balance and the credits charged. */
  readonly credits: boolean;
  /**
   * ARGV[4], [5], [7], [8], [9] and [10..10+3n] (expiry grace, n, usage
   * marker lifetime, options, k, each counter's window, limit and counterId,
   * the charge records' lifetime) as the one argument consume.lua is sent
   * them in (see its header): newline-separated.
   */
  readonly fixedArgs: string;
}

/** Subjects whose call parts are kept per list of policies; past it, the list's entries start over. */
const MAX_SUBJECTS_PER_POLICY_LIST = 10_000;

/**
 * The parts of consume.lua calls that do not change between a subject's
 * requests (key names, per-counter arguments), built once per subject and
 * list of policies rather than per request: building a key encodes the
 * subject's hash tag with a regex. The policy lists are the plans' own
 * (PlansWithOverrides keeps one per subject with overrides), so a list is
 * collected with its plan (WeakMap); the subjects under one list are capped.
 */
export class ConsumeCallParts {
  readonly #byPolicies = new WeakMap<readonly Policy[], Map<string, CallParts>>();

  partsOf(input: ConsumeScriptInput, options: ConsumeScriptOptions): CallParts {
    const meters = input.meters ?? NO_METERS;
    let bySubject = this.#byPolicies.get(input.policies);
    if (bySubject === undefined) this.#byPolicies.set(input.policies, (bySubject = new Map()));
    const kept = bySubject.get(input.subject);
    // A policy list is one plan's: its name matches but for a list handed to two plans.
    if (kept !== undefined && kept.meters === meters && (!kept.events || kept.plan === input.plan)) return kept;
    if (bySubject.size >= MAX_SUBJECTS_PER_POLICY_LIST) bySubject.clear();
    const parts = callPartsOf(input, meters, options);
    bySubject.set(input.subject, parts);
    return parts;
  }
}

const NO_METERS: readonly Meter[] = Object.freeze([]);

function callPartsOf(input: ConsumeScriptInput, meters: readonly Meter[], options: ConsumeScriptOptions): CallParts {
  const keys = input.policies.map((policy) => counterKey(options.keyPrefix, input.subject, policy.counterId));
  for (const meter of meters) keys.push(counterKey(options.keyPrefix, input.subject, meter.counterId));
  keys.push(
    usageMarkerKey(options.keyPrefix, input.subject),
    hydrationMarkerKey(options.keyPrefix, input.subject),
    usageIndexKey(options.keyPrefix, options.slot),
  );
  const counterArgs: Array<string | number> = [];
  for (const policy of input.policies) counterArgs.push(policy.window, policy.limit, policy.counterId);
  // A limit of 0: counted, never limiting.
  for (const meter of meters) counterArgs.push(meter.window, 0, meter.counterId);
  // A policy list has one metric, so at most one credit balance.
  const credits = input.policies.find((policy) => policy.credits !== undefined)?.credits;
  const optionKeys =
    credits === undefined
      ? []
      : [creditBalanceKey(options.keyPrefix, input.subject, credits.metric), counterKey(options.keyPrefix, input.subject, credits.counterId)];
  // Events only where something can emit one: a policy with thresholds, or credits.
  const events = options.events !== undefined && (credits !== undefined || input.policies.some((policy) => policy.thresholds !== undefined));
  let policyOptions = policyOptionsOf(input.policies, events);
  if (events) {
    optionKeys.push(eventStreamKey(options.keyPrefix, options.slot));
    const entry = `e,${optionKeys.length},${options.events!.streamMaxLength},${input.plan ?? ''}`;
    policyOptions = policyOptions === '' ? entry : `${policyOptions};${entry}`;
  }
  const fixedArgs = [
    COUNTER_EXPIRY_GRACE_MS,
    input.policies.length + meters.length,
    USAGE_MARKER_TTL_MS,
    policyOptions,
    optionKeys.length,
    ...counterArgs,
    CHARGE_RECORDS_KEY_TTL_MS,
  ].join('\n');
  return {
    meters,
    plan: input.plan,
    events,
    keys,
    chargeRecordsKeyPrefix: chargeRecordsKeyPrefix(options.keyPrefix, input.subject),
    optionKeys,
    credits: credits !== undefined,
    fixedArgs,
  };
}

/**
 * consume.lua's ARGV[8] for `policies`: one `o,<index>,<max>,<counterId>`
 * entry per policy allowing overage, one `c,<index>,1,<spend counterId>`
 * per policy covered by credits (their keys are option keys 1 and 2), and
 * with `events` one `t,<index>,<units>,<percents>,<name>` per policy with
 * thresholds (the `e` entry is the caller's). Names hold no `,` or `;`
 * (metric names follow the config's name pattern).
 */
function policyOptionsOf(policies: readonly Policy[], events: boolean): string {
  const entries: string[] = [];
  policies.forEach((policy, i) => {
    if (policy.overage !== undefined) entries.push(`o,${i + 1},${policy.overage.max},${policy.overage.counterId}`);
    if (policy.credits !== undefined) entries.push(`c,${i + 1},1,${policy.credits.counterId}`);
    if (events && policy.thresholds !== undefined) {
      entries.push(`t,${i + 1},${policy.thresholds.units.join(':')},${policy.thresholds.percents.join(':')},${policy.name}`);
    }
  });
  return entries.join(';');
}

/**
 * How long a call's charge record (what it charged, by request id) can be
 * read after it was written, in ms: a call whose reply was lost can be
 * undone for at least this long. Every charge adds one field (tens of
 * bytes), so this bounds their number: charges per second × 180.
 */
const CHARGE_RECORD_TTL_MS = 120_000;

/**
 * The lifetime consume.lua gives a minute's charge records, from the
 * minute's first one: the minute itself plus CHARGE_RECORD_TTL_MS, so the
 * last record of the minute lives as long as the first.
 */
const CHARGE_RECORDS_KEY_TTL_MS = 60_000 + CHARGE_RECORD_TTL_MS;

/** The minute whose charge records a call sent at `nowMs` (this instance's clock) goes to. */
export function chargeMinuteOf(nowMs: number): number {
  return Math.floor(nowMs / 60_000);
}

/** How long an unflushed usage marker lives, in ms: past any period, so a leftover is found by a later sweep. */
export const USAGE_MARKER_TTL_MS = 40 * 86_400_000;

/** consume.lua's answer when the subject must be hydrated from the ledger first. */
export const NEEDS_HYDRATION = 'needs-hydration';

/**
 * The directory holding the .lua files: `lua/` at the repository (or image)
 * root, two levels above this module under src/ (tsx), three under dist/src/
 * (compiled; the Dockerfile copies lua/ to /app/lua beside /app/dist).
 */
export function luaDirectory(moduleDir: string = import.meta.dirname): string {
  const candidates = [resolve(moduleDir, '../../lua'), resolve(moduleDir, '../../../lua')];
  const found = candidates.find((dir) => existsSync(resolve(dir, 'consume.lua')));
  if (found === undefined) throw new Error(`lua/consume.lua not found; looked in ${candidates.join(', ')}`);
  return found;
}

/** Defines the quotagate scripts on `client`, once; later calls do nothing. */
export function registerScripts(client: RedisClient, luaDir: string = luaDirectory()): void {
  const scripts = {
    quotagateConsume: 'consume.lua',
    quotagateRefund: 'refund.lua',
    quotagatePeek: 'peek.lua',
    quotagateHydrate: 'hydrate.lua',
    quotagateClearUsageMarker: 'clear-usage-marker.lua',
    quotagateResetCounters: 'reset-counters.lua',
    quotagateAddCredits: 'add-credits.lua',
    quotagateSettleIdempotency: 'settle-idempotency.lua',
    quotagateUndoCharge: 'undo-charge.lua',
  } as const;
  for (const [name, file] of Object.entries(scripts)) {
    if (typeof (client as unknown as Record<string, unknown>)[name] === 'function') continue;
    client.defineCommand(name, { lua: readFileSync(resolve(luaDir, file), 'utf8') });
  }
}

/**
 * Decides `input` with one EVALSHA of lua/consume.lua. Rejects only for
 * infrastructure faults (connection, timeout, a malformed reply).
 */
export async function runConsumeScript(
  client: RedisClient,
  input: ConsumeScriptInput,
  options: ConsumeScriptOptions,
): Promise<Decision> {
  const answer = await runTrackedConsumeScript(client, input, { ...options, trackUsage: false });
  if (answer === NEEDS_HYDRATION) throw new ScriptReplyError('consume.lua', [-1]);
  return answer;
}

/**
 * Like runConsumeScript, and with `options.trackUsage` the script may answer
 * NEEDS_HYDRATION (nothing decided or charged) instead of a Decision.
 */
export async function runTrackedConsumeScript(
  client: RedisClient,
  input: ConsumeScriptInput,
  options: ConsumeScriptOptions,
): Promise<Decision | typeof NEEDS_HYDRATION> {
  const reply = await client.quotagateConsume(...consumeScriptCall(input, options));
  if (Array.isArray(reply) && reply.length === 1 && reply[0] === -1) return NEEDS_HYDRATION;
  return parseConsumeReply(reply, input);
}

/** An Idempotency-Key's part of a consume.lua call: its record key (KEYS[n+5+k]) and ARGV[12+3n], ARGV[13+3n]. */
export interface IdempotencyScriptPart {
  readonly recordKey: string;
  readonly fingerprint: string;
  readonly attempt: string;
}

/**
 * The arguments of one consume.lua call: the number of keys, the KEYS, then
 * the ARGV (see the script's header). KEYS: the policies' counters, the
 * meters' counters, the usage marker, the hydration marker, the usage index,
 * the call's charge record, then the Idempotency-Key record when there is one.
 */
export function consumeScriptCall(
  input: ConsumeScriptInput,
  options: ConsumeScriptOptions,
  idempotency?: IdempotencyScriptPart,
): [number, ...Array<string | number>] {
  const parts = options.callParts?.partsOf(input, options) ?? callPartsOf(input, input.meters ?? NO_METERS, options);
  const keyCount = parts.keys.length + parts.optionKeys.length + (idempotency === undefined ? 1 : 2);
  const call: [number, ...Array<string | number>] = [keyCount, ...parts.keys];
  call.push(`${parts.chargeRecordsKeyPrefix}${input.chargeMinute ?? chargeMinuteOf(Date.now())}`);
  for (const key of parts.optionKeys) call.push(key);
  if (idempotency !== undefined) call.push(idempotency.recordKey);
  // ARGV as consume.lua is sent it (its header): what never changes for the subject is one argument.
  call.push(
    input.cost,
    options.nowOverrideMs === undefined ? '' : Math.floor(options.nowOverrideMs),
    options.inFlightTtlMs,
    options.trackUsage === true ? 1 : 0,
    parts.fixedArgs,
    input.requestId ?? randomUUID(),
  );
  if (idempotency !== undefined) call.push(idempotency.fingerprint, idempotency.attempt);
  if (parts.events) call.push(input.subject);
  return call;
}

/** Where an adjustment's usage marker lives: the ledger backs the counters. */
export interface AdjustUsageTracking {
  /** On a Redis Cluster, the slot of the subject's keys (its usage index is that slot's); absent on one Redis. */
  readonly slot?: number | undefined;
}

/**
 * Adds `delta` units (signed, non-zero) to the counters and periods the
 * receipt names, with one EVALSHA of lua/refund.lua: a negative delta gives
 * units back (never below zero), a positive one charges them ignoring the
 * limits. With `usage` (a ledger backs the counters), the subject's usage
 * marker gets the adjusted counts at a fresh version of the subject.
 * Resolves to how many counters were
 * adjusted (a counter whose period has passed is not).
 */
export async function runAdjustScript(
  client: RedisClient,
  keyPrefix: string,
  receipt: ChargeReceipt,
  delta: number,
  usage?: AdjustUsageTracking,
  /** Epoch ms that decides which grants have expired, instead of Redis TIME (tests only). */
  nowMs?: number,
): Promise<number> {
  // Credits come back only when the adjustment gives units back.
  const credits = delta < 0 ? receipt.credits : undefined;
  if ((receipt.charges.length === 0 && credits === undefined) || delta === 0) return 0;
  const keys = receipt.charges.map((charge) => counterKey(keyPrefix, receipt.subject, charge.counterId));
  const args: Array<string | number> = [delta, receipt.charges.length];
  for (const charge of receipt.charges) args.push(Math.floor(charge.periodStartMs / 1000));
  if (usage !== undefined) {
    keys.push(
      usageMarkerKey(keyPrefix, receipt.subject),
      hydrationMarkerKey(keyPrefix, receipt.subject),
      usageIndexKey(keyPrefix, usage.slot),
    );
  }
  if (usage !== undefined || credits !== undefined) {
    for (const charge of receipt.charges) args.push(charge.counterId);
    args.push(USAGE_MARKER_TTL_MS);
  }
  if (credits !== undefined) {
    keys.push(creditBalanceKey(keyPrefix, receipt.subject, credits.metric), counterKey(keyPrefix, receipt.subject, credits.spendCounterId));
    args.push(
      usage === undefined ? 0 : 1,
      Math.min(-delta, credits.units),
      Math.floor(credits.monthStartMs / 1000),
      credits.spendCounterId,
      nowMs ?? '',
    );
  }
  const reply = await client.quotagateRefund(keys.length, ...keys, ...args);
  if (typeof reply !== 'number') throw new ScriptReplyError('refund.lua', reply);
  return reply;
}

/**
 * The current state of `policies` for `subject`, charging nothing: one
 * EVALSHA of lua/peek.lua (the counters and the time), the periods worked out
 * here from that time.
 */
export async function runPeekScript(
  client: RedisClient,
  keyPrefix: string,
  subject: string,
  policies: readonly Policy[],
  nowOverrideMs?: number,
): Promise<PolicyState[]> {
  if (policies.length === 0) return [];
  const keys = policies.map((policy) => counterKey(keyPrefix, subject, policy.counterId));
  const reply = await client.quotagatePeek(keys.length, ...keys, nowOverrideMs === undefined ? '' : Math.floor(nowOverrideMs));
  return parsePeekReply(reply, policies);
}

/** The one parser of peek.lua's reply (see the script's header). */
function parsePeekReply(reply: unknown, policies: readonly Policy[]): PolicyState[] {
  if (!Array.isArray(reply) || reply.length !== 1 + 2 * policies.length || !reply.every((v) => Number.isInteger(v))) {
    throw new ScriptReplyError('peek.lua', reply);
  }
  const values = reply as number[];
  const nowMs = values[0]!;
  return policies.map((policy, i) => {
    const periodStartSeconds = values[1 + 2 * i]!;
    const current = periodStartSeconds * 1000 === periodOf(policy.window, nowMs).startMs;
    return policyStateAt(policy, current ? values[2 + 2 * i]! : 0, nowMs);
  });
}

/**
 * Deletes `subject`'s counters of `policies` with one EVALSHA of
 * lua/reset-counters.lua; with `trackUsage`, the reset goes into the usage
 * marker (0 for each counter's period at `nowMs`) at a fresh version of the
 * subject. Resolves to that version, or undefined when there is none to
 * write the reset at (no `trackUsage`, or Redis had lost the subject).
 */
export async function runResetScript(
  client: RedisClient,
  keyPrefix: string,
  subject: string,
  policies: readonly Policy[],
  options: { readonly trackUsage: boolean; readonly nowMs: number; readonly slot?: number | undefined },
): Promise<number | undefined> {
  if (policies.length === 0) return undefined;
  const keys = policies.map((policy) => counterKey(keyPrefix, subject, policy.counterId));
  keys.push(usageMarkerKey(keyPrefix, subject), hydrationMarkerKey(keyPrefix, subject), usageIndexKey(keyPrefix, options.slot));
  const args: Array<string | number> = [policies.length, options.trackUsage ? 1 : 0];
  for (const policy of policies) args.push(policy.counterId);
  for (const policy of policies) args.push(Math.floor(periodOf(policy.window, options.nowMs).startMs / 1000));
  args.push(USAGE_MARKER_TTL_MS);
  const reply = await client.quotagateResetCounters(keys.length, ...keys, ...args);
  if (typeof reply !== 'number' || !Number.isSafeInteger(reply) || reply < 0) throw new ScriptReplyError('reset-counters.lua', reply);
  return reply === 0 ? undefined : reply;
}

/** consume.lua answered something its header does not describe. */
export class ScriptReplyError extends Error {
  constructor(script: string, reply: unknown) {
    super(`unexpected reply from ${script}: ${JSON.stringify(reply)?.slice(0, 200)}`);
    this.name = 'ScriptReplyError';
  }
}

const FIELDS_PER_POLICY = 6;

/**
 * The one parser of consume.lua's reply (see the script's header) into a
 * Decision, naming the entries after `input.policies` in order. Meters'
 * entries (after the policies') go into the receipt only.
 */
export function parseConsumeReply(reply: unknown, input: ConsumeScriptInput): Decision {
  if (!Array.isArray(reply) || reply.length < 3 || !reply.every((value) => Number.isInteger(value))) {
    throw new ScriptReplyError('consume.lua', reply);
  }
  const values = reply as number[];
  const [allowed, , count] = values as [number, number, number];
  const meters = input.meters ?? [];
  // With a policy covered by credits, the reply ends with the balance and the credits charged.
  const coverage = input.policies.find((policy) => policy.credits !== undefined)?.credits;
  const creditFields = coverage === undefined ? 0 : 2;
  if (values.length !== 3 + FIELDS_PER_POLICY * count + creditFields || count !== input.policies.length + meters.length) {
    throw new ScriptReplyError('consume.lua', reply);
  }
  const credits: CreditState | undefined =
    coverage === undefined ? undefined : { metric: coverage.metric, balance: values[values.length - 2]!, charged: values[values.length - 1]! };
  const states: PolicyState[] = [];
  const violated: boolean[] = [];
  const charges: Array<ChargeReceipt['charges'][number]> = [];
  // The start of the covered policy's period that credits paid (epoch s), if they paid: the month the spend counts in.
  let paidPeriodStart: number | undefined;
  for (let i = 0; i < input.policies.length; i++) {
    const policy = input.policies[i]!;
    const [limit, remaining, resetSeconds, periodSeconds, periodStart, isViolated] = values.slice(
      3 + FIELDS_PER_POLICY * i,
      3 + FIELDS_PER_POLICY * (i + 1),
    ) as [number, number, number, number, number, number];
    if (policy.overage === undefined) {
      states.push({ name: policy.name, kind: policy.kind, window: policy.window, limit, remaining, resetSeconds, periodSeconds });
    } else {
      // A policy allowing overage answers limit - used: negative past the limit.
      states.push({
        name: policy.name,
        kind: policy.kind,
        window: policy.window,
        limit,
        remaining: Math.max(0, remaining),
        resetSeconds,
        periodSeconds,
        overage: Math.max(0, -remaining),
      });
    }
    violated.push(isViolated === 1);
    // 2: paid by credits, so not charged (and not refunded).
    if (isViolated !== 2) charges.push({ counterId: policy.counterId, periodStartMs: periodStart * 1000 });
    else paidPeriodStart = periodStart;
  }
  if (allowed !== 1) return credits === undefined ? denialOf(states, violated) : { ...denialOf(states, violated), credits };
  if (count === 0) return { allowed: true, policies: states };
  // The meters' entries follow the policies'; they are charged, not reported.
  for (let i = input.policies.length; i < count; i++) {
    const periodStart = values[3 + FIELDS_PER_POLICY * i + 4]!;
    charges.push({ counterId: meters[i - input.policies.length]!.counterId, periodStartMs: periodStart * 1000 });
  }
  const receipt: ChargeReceipt =
    coverage === undefined || credits === undefined || credits.charged === 0 || paidPeriodStart === undefined
      ? { subject: input.subject, cost: input.cost, charges }
      : {
          subject: input.subject,
          cost: input.cost,
          charges,
          credits: {
            metric: coverage.metric,
            spendCounterId: coverage.counterId,
            units: credits.charged,
            // The covered period lies within one month (a lifetime one has none: its start is 0, and no spend counter is that old).
            monthStartMs: periodOf('month', paidPeriodStart * 1000).startMs,
          },
        };
  return credits === undefined ? { allowed: true, policies: states, receipt } : { allowed: true, policies: states, receipt, credits };
}

/** One subject's grants to write into its credit balances (lua/add-credits.lua); resolves to how many were written. */
export async function runAddCreditsScript(
  client: RedisClient,
  keyPrefix: string,
  subject: string,
  grants: readonly CreditGrantState[],
): Promise<number> {
  if (grants.length === 0) return 0;
  const metrics = [...new Set(grants.map((grant) => grant.metric))];
  const keys = metrics.map((metric) => creditBalanceKey(keyPrefix, subject, metric));
  const args = grants.flatMap((grant) => [metrics.indexOf(grant.metric) + 1, grant.id, grant.amount, grant.expiresAtMs ?? 0, grant.used]);
  const reply = await client.quotagateAddCredits(keys.length, ...keys, ...args);
  if (typeof reply !== 'number') throw new ScriptReplyError('add-credits.lua', reply);
  return reply;
}

/**
 * The subject's balance of `metric` at `nowMs` (epoch ms): the unspent units
 * of its grants in force. One HGETALL; Redis TIME is not read, so the caller
 * gives the time (a few ms of skew move only a grant expiring right then).
 */
export async function readCreditBalance(client: RedisClient, keyPrefix: string, subject: string, metric: string, nowMs: number): Promise<number> {
  const fields = await client.hgetall(creditBalanceKey(keyPrefix, subject, metric));
  return creditBalanceOf(fields, nowMs);
}

/** The balance a credit HASH (fields a:<id>, u:<id>, x:<id>; see lua/consume.lua) holds at `nowMs`. */
export function creditBalanceOf(fields: Readonly<Record<string, string>>, nowMs: number): number {
  let balance = 0;
  for (const [field, value] of Object.entries(fields)) {
    if (!field.startsWith('a:')) continue;
    const id = field.slice(2);
    const expiresAtMs = Number(fields[`x:${id}`] ?? 0);
    if (expiresAtMs !== 0 && expiresAtMs <= nowMs) continue;
    balance += Math.max(0, Number(value) - Number(fields[`u:${id}`] ?? 0));
  }
  return balance;
}
