import type { CreditGrantState } from './credits.js';
import type { PolicyState } from './decision.js';
import { GatewayError } from './errors.js';
import type { Policy } from './policy.js';

/**
 * What the usage endpoints and the admin service need of the limit store
 * (main.ts wires the guarded limiter): a subject's current state, charging
 * nothing, and a reset of its counters. Both reject on store faults; callers
 * answer 503 `usage_unavailable` ({@link peekUsage}).
 */
export interface UsageStore {
  /** The state of each of `policies`, in order; a policy not charged this period reports its full limit. */
  peek(subject: string, policies: readonly Policy[]): Promise<readonly PolicyState[]>;
  /**
   * Deletes the subject's counters of `policies`, and forgets its local deny
   * entry on this instance. Resolves to the subject's version the reset
   * took in the store (write the ledger's reset at it), or undefined when
   * the store keeps none.
   */
  reset(subject: string, policies: readonly Policy[]): Promise<number | undefined>;
  /** Forgets the subject's local deny entry on this instance (after a credit grant). */
  forget(subject: string): void;
  /** Adds committed credit grants to the subject's balances in the store (see Limiter.addCredits). */
  addCredits(subject: string, grants: readonly CreditGrantState[]): Promise<void>;
  /** The subject's credit balance of `metric` in the store. */
  creditBalance(subject: string, metric: string): Promise<number>;
}

/**
 * `call` on the store: 503 `usage_unavailable` when this gateway has no
 * store to read (`usage` undefined), or with `Retry-After: 1` when the store
 * did not answer (its error is not passed on: it may name hosts).
 */
export async function callUsageStore<T>(usage: UsageStore | undefined, call: (usage: UsageStore) => Promise<T>): Promise<T> {
  if (usage === undefined) throw new GatewayError('usage_unavailable', 'This gateway cannot read its limit store.');
  try {
    return await call(usage);
  } catch {
    throw new GatewayError('usage_unavailable', 'The limit store did not answer; retry later.', {}, [['retry-after', '1']]);
  }
}
