import type { WindowLimit } from './windows.js';

/** A plan as the hot path uses it, resolved from gateway.yaml. */
export interface Plan {
  readonly name: string;
  /** The windows this plan limits, shortest first. May be empty (unlimited). */
  readonly windows: readonly WindowLimit[];
  /** Where a denied caller can upgrade; echoed in 429 bodies when set. */
  readonly upgradeUrl?: string;
}
