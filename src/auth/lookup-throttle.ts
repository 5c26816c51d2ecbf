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

/** One client address's use of the current second; also the ticket of an admitted lookup. */
export interface LookupTicket {
  second: number;
  /** Lookups this second that found no key. */
  unknown: number;
  /** Lookups admitted and still querying. */
  inFlight: number;
  /** Lookups waiting for a running one to settle; created on first need. */
  waiters: Array<(admission: LookupTicket | typeof THROTTLED) => void> | undefined;
}

/** The answer for a client address whose unknown-key budget of this second is spent. */
export const THROTTLED = Symbol('throttled');

/** What {@link KeyLookupThrottle.admit} answers: a ticket now, a refusal now, or either once running lookups settle. */
export type LookupAdmission = LookupTicket | typeof THROTTLED | Promise<LookupTicket | typeof THROTTLED>;

/** How an admitted lookup ended: only `unknown` spends the budget. */
export type LookupOutcome = 'known' | 'unknown' | 'failed';

/**
 * A per-client-address budget of key lookups that reach the database and
 * find nothing: at most `unknownPerSecond` a second. Known keys and failed
 * queries spend nothing, so a client presenting many new valid keys is never
 * refused; but a lookup whose outcome is not known yet holds a place, so at
 * most `unknownPerSecond` lookups of one address query at once and
 * concurrent guesses cannot overshoot the budget. A lookup that finds every
 * place held by running ones waits for one to settle (queries are bounded by
 * the statement timeout); once the address's unknown lookups this second
 * reach the budget, it and every further one are refused without a query
 * (429 `auth_throttled`) until the next second.
 *
 * Memory is bounded by `maxClients` (an LRU); a forgotten address starts
 * with a full budget. Admitted lookups keep their ticket, so forgetting an
 * address never strands a waiting lookup.
 */
export class KeyLookupThrottle {
  readonly #unknownPerSecond: number;
  readonly #clock: Clock;
  readonly #budgets: LRUCache<string, LookupTicket>;

  constructor(options: LookupThrottleOptions) {
    this.#unknownPerSecond = options.unknownPerSecond;
    this.#clock = options.clock;
    this.#budgets = new LRUCache<string, LookupTicket>({ max: options.maxClients });
  }

  /** Asks to query for `client`; an admitted lookup must be {@link settle}d with its ticket. */
  admit(client: string): LookupAdmission {
    const second = this.#second();
    let budget = this.#budgets.get(client);
    if (budget === undefined) {
      budget = { second, unknown: 0, inFlight: 0, waiters: undefined };
      this.#budgets.set(client, budget);
    }
    this.#rollOver(budget, second);
    if (budget.unknown >= this.#unknownPerSecond) return THROTTLED;
    if (budget.unknown + budget.inFlight < this.#unknownPerSecond) {
      budget.inFlight++;
      return budget;
    }
    const queued = budget;
    return new Promise((resolve) => (queued.waiters ??= []).push(resolve));
  }

  /** Records how an admitted lookup ended, and admits or refuses the lookups waiting behind it. */
  settle(ticket: LookupTicket, outcome: LookupOutcome): void {
    ticket.inFlight--;
    this.#rollOver(ticket, this.#second());
    if (outcome === 'unknown') ticket.unknown++;
    const waiters = ticket.waiters;
    if (waiters === undefined) return;
    while (waiters.length > 0) {
      if (ticket.unknown >= this.#unknownPerSecond) {
        for (const refuse of waiters.splice(0)) refuse(THROTTLED);
        return;
      }
      if (ticket.unknown + ticket.inFlight >= this.#unknownPerSecond) return;
      ticket.inFlight++;
      waiters.shift()!(ticket);
    }
  }

  /** Client addresses tracked now. */
  get size(): number {
    return this.#budgets.size;
  }

  #second(): number {
    return Math.floor(this.#clock.now() / 1000);
  }

  #rollOver(budget: LookupTicket, second: number): void {
    if (budget.second === second) return;
    budget.second = second;
    budget.unknown = 0;
  }
}
