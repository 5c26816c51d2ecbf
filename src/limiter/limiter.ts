import type { CreditGrantState } from '../core/credits.js';
import type { ChargeReceipt, Decision, PolicyState } from '../core/decision.js';
import type { IdempotencyClaim, IdempotencyTicket, IdempotentDecision, StoredResponse } from '../core/idempotency.js';
import type { Meter, Policy } from '../core/policy.js';

/** One request's charge: `cost` units against every policy that applies. */
export interface ConsumeRequest {
  readonly subject: string;
  /** The windows and quotas that apply. An empty list always admits. */
  readonly policies: readonly Policy[];
  /**
   * Counters charged with the policies when the request is admitted, in the
   * same store call, but never limiting (the plan's meters). They are not
   * in the decision's `policies`; they are in its receipt, so a refund gives
   * them back too. Default none.
   */
  readonly meters?: readonly Meter[];
  /** Units to charge; a positive integer. */
  readonly cost: number;
  /**
   * The name of the plan the policies come from, which quota events carry
   * (their data's `plan`); null in them when absent. Decides nothing.
   */
  readonly plan?: string;
}

/** How long idempotency records live, in ms (`idempotency.*`). */
export interface IdempotencyTimes {
  /** An admitted request's in-flight mark, until it completes or is released. */
  readonly inFlightTtlMs: number;
  /** A completed response, replayed to repeats. */
  readonly ttlMs: number;
}

/** What Limiter.peek reads: a subject's policies. */
export interface PeekRequest {
  readonly subject: string;
  readonly policies: readonly Policy[];
}

/**
 * Decides and charges requests against calendar-aligned UTC policies.
 *
 * Contract (pinned by test/contract/limiter.contract.ts, run against every
 * implementation):
 * - all or nothing: a request is admitted only if every policy has room for
 *   its cost, and then every policy is charged; a denial charges nothing;
 * - a cost larger than what remains is denied without changing any counter;
 * - meters are charged with every admission and never deny; the decision's
 *   policies omit them, its receipt (and so a refund) includes them;
 * - counters of a period are gone once the period ends;
 * - idempotency: a key's record (per subject) is looked up, and on a miss
 *   the request decided, charged and its key marked in flight, in one atomic
 *   step; a record with the same fingerprint answers `replay` once completed
 *   and `in-flight` before, one with another fingerprint `reused`; none of
 *   these charge anything. Denials leave no record;
 * - credits: a policy covered by credits (Policy.credits) that has no room
 *   for the cost does not deny when every other policy has room and the
 *   subject's balance of the metric holds the cost: the cost is charged to
 *   the balance (grants soonest-expiring first, never-expiring last, an
 *   expired grant never) instead of that policy, which is not charged and
 *   not in the receipt; otherwise the request is denied and nothing, credits
 *   included, is charged. Decisions about such policies report `credits`;
 * - a refund returns the cost to the periods named in the receipt, never
 *   below zero, and leaves a counter alone once its period has passed;
 * - an adjustment adds a signed number of units to the periods named in the
 *   receipt by the same rules: a positive one is charged whatever the limits
 *   (the next requests are then denied), a negative one never takes a count
 *   below zero; a refund is an adjustment by −cost;
 * - events (when the limiter was given somewhere to write them; see
 *   docs/events.md): in the same atomic step as the decision, a policy
 *   with thresholds (Policy.thresholds) emits one `quota.threshold` per
 *   threshold its count reaches in a period, once per subject, policy,
 *   period and threshold (a refund and a new crossing emit nothing new),
 *   and one `quota.exhausted` at its first denial of a period; a decision
 *   that spends credits emits `credits.low` when the balance falls to or
 *   below a tenth of the units granted by the unexpired grants, and
 *   `credits.exhausted` when it reaches 0, each once per crossing;
 * - a denial resolves to `{ allowed: false }`; only infrastructure faults
 *   reject the promise.
 *
 * consume() may answer with the Decision itself when it needed no I/O (the
 * memory store, once a subject is hydrated): the hot path awaits only a
 * real promise. An error it throws then means what a rejection means.
 */
export interface Limiter {
  consume(request: ConsumeRequest): Decision | Promise<Decision>;
  /** consume() for a request carrying an Idempotency-Key (see the contract above). */
  consumeIdempotent(request: ConsumeRequest, claim: IdempotencyClaim): Promise<IdempotentDecision>;
  /**
   * Keeps `response` as the answer to the ticket's key for replay, if the key
   * is still in flight under this ticket (else does nothing).
   */
  completeIdempotent(ticket: IdempotencyTicket, response: StoredResponse): Promise<void>;
  /** Deletes the ticket's in-flight mark (if still its own), so the client may retry the key. */
  releaseIdempotent(ticket: IdempotencyTicket): Promise<void>;
  /** Gives an admitted request's charge back (the route's `refund_on`). */
  refund(receipt: ChargeReceipt): Promise<void>;
  /**
   * Adds `delta` units (a signed, non-zero integer) to the receipt's counters
   * in the periods it names (a cost settled from the upstream's response:
   * `cost.from_response`). See the contract above.
   */
  adjust(receipt: ChargeReceipt, delta: number): Promise<void>;
  /**
   * The current state of each of `policies` for `subject` (used, remaining,
   * reset), in order, charging nothing. A policy never charged in its
   * current period reports its full limit.
   */
  peek(request: PeekRequest): Promise<PolicyState[]>;
  /**
   * Deletes `subject`'s counters of `policies`: every one starts its period
   * afresh. With a ledger, the reset is recorded for it at a fresh version
   * of the subject (see DirtyUsage.version), which it resolves to, for the
   * caller's own write of the reset (db/usage.ts resetUsage); undefined
   * when the store has no version to give (no ledger, or it lost the
   * subject).
   */
  reset(subject: string, policies: readonly Policy[]): Promise<number | undefined>;
  /**
   * Adds credit grants to the subject's balances (a new grant, with `used`
   * 0). Writing a grant again changes nothing, and what was spent of a
   * grant is never lowered, so a grant the subject's hydration restored
   * too is counted once.
   */
  addCredits(subject: string, grants: readonly CreditGrantState[]): Promise<void>;
  /** The subject's balance of `metric`: the unspent units of its grants in force, charging nothing. */
  creditBalance(subject: string, metric: string): Promise<number>;
  /** Releases timers and connections. */
  close(): Promise<void>;
}
