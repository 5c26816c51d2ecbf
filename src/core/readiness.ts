/**
 * What the store's readiness probe last found, for `/readyz`. The probe runs
 * off the request path (src/redis/readiness-probe.ts for Redis); the memory
 * store is always up.
 */
export interface StoreReadiness {
  /** `unknown` only until the first probe has answered. */
  readonly state: 'up' | 'down' | 'unknown';
  /** Why `down`, naming the check that failed (a refused command, OOM, …); absent when up. */
  readonly reason?: string;
  /** What does not fail requests now but puts the limits at risk (an evicting maxmemory-policy). */
  readonly warnings: readonly string[];
}

/** The readiness of a store that cannot fail on its own (the in-memory store). */
export const ALWAYS_READY: StoreReadiness = Object.freeze({ state: 'up', warnings: Object.freeze([]) });
