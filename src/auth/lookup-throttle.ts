import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/clock.js';

/** `auth.api_keys.lookup_throttle` in gateway.yaml. */
export interface LookupThrottleOptions {
  /** Database lookups of unknown keys one client address may cause per second (UTC second). */
  readonly unknownPerSecond: number;
  /** Most client addresses tracked; the least recently seen are forgotten first. */
  readonly maxClients: number;
  readonly clock: Clock;
}

/** One client's use of the current second. */
interface Budget {
  second: number;
  used: number;
}

/**
 * A per-client-address budget of key lookups that reach the database and
 * find nothing. A lookup takes one unit before its query and gives it back
 * when the key turns out to exist, so only unknown keys spend the budget,
 * and concurrent guesses cannot overshoot it (each holds its unit while its
 * query runs). Past the budget the caller refuses the request without a
 * query (429 `auth_throttled`) until the next second.
 *
 * Memory is bounded by `maxClients` (an LRU); a forgotten address starts
 * with a full budget, which costs an attacker cycling through more than
 * `maxClients` addresses at most one budget per address.
 */
export class KeyLookupThrottle {
  readonly #unknownPerSecond: number;
  readonly #clock: Clock;
  readonly #budgets: LRUCache<string, Budget>;

  constructor(options: LookupThrottleOptions) {
    this.#unknownPerSecond = options.unknownPerSecond;
    this.#clock = options.clock;
    this.#budgets = new LRUCache<string, Budget>({ max: options.maxClients });
  }

  /** Takes one unit of `client`'s budget for a lookup about to query; false when none is left this second. */
  tryTake(client: string): boolean {
    const second = Math.floor(this.#clock.now() / 1000);
    const budget = this.#budgets.get(client);
    if (budget === undefined) {
      this.#budgets.set(client, { second, used: 1 });
      return true;
    }
    if (budget.second !== second) {
      budget.second = second;
      budget.used = 0;
    }
    if (budget.used >= this.#unknownPerSecond) return false;
    budget.used++;
    return true;
  }

  /** Gives back the unit a lookup took, once its key turned out to exist (or its query failed). */
  giveBack(client: string): void {
    const budget = this.#budgets.peek(client);
    if (budget !== undefined && budget.used > 0) budget.used--;
  }

  /** Client addresses tracked now. */
  get size(): number {
    return this.#budgets.size;
  }
}
