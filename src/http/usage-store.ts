import type { PolicyState } from '../core/decision.js';
import type { Policy } from '../core/policy.js';

/**
 * What the usage endpoints need of the limit store (main.ts wires the
 * guarded limiter): a subject's current state, charging nothing, and a
 * reset of its counters. Both reject on store faults; the caller answers
 * 503 `usage_unavailable`.
 */
export interface UsageStore {
  /** The state of each of `policies`, in order; a policy not charged this period reports its full limit. */
  peek(subject: string, policies: readonly Policy[]): Promise<readonly PolicyState[]>;
  /** Deletes the subject's counters of `policies`, and forgets its local deny entry on this instance. */
  reset(subject: string, policies: readonly Policy[]): Promise<void>;
  /** Forgets the subject's local deny entry on this instance (after a credit grant). */
  forget(subject: string): void;
}
