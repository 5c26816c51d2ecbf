import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The thin query interface that hides which engine runs: PostgresDatabase
 * (postgres.js, a server) or PgliteDatabase (PGlite, in process). Every
 * statement is written once, with `$1`-style parameters, and runs on both.
 *
 * Values, identical on both engines:
 * - parameters: strings, numbers, booleans, null, Dates (for timestamptz),
 *   arrays of those (cast the parameter: `$1::text[]`), and plain objects or
 *   arrays for jsonb (`$1::jsonb`). Never pass JSON already serialized to
 *   text: postgres.js would encode it a second time;
 * - results: int8 (bigint, bigserial, count(*)) as a number, exact up to
 *   2^53; timestamptz as a Date (millisecond precision); jsonb parsed;
 *   arrays as arrays; NULL as null. Avoid numeric: the engines differ on it.
 */
export interface Queryable {
  /** Runs one statement and resolves to its rows (none for a statement without RETURNING). */
  query<Row extends object = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<Row[]>;
}

/**
 * The statements of one open transaction, handed to Database.transaction's
 * callback. Functions that must commit together with their audit row (every
 * admin write) take a Transaction rather than a Queryable, so the type
 * checker sees that a caller opened one.
 */
export interface Transaction extends Queryable {
  readonly inTransaction: true;
  /** Runs a script of several statements without parameters (a migration file). */
  execScript(script: string): Promise<void>;
}

export interface Database extends Queryable {
  readonly engine: 'postgres' | 'pglite';
  /**
   * Statements this instance has run since it was opened: every query() and
   * execScript(), inside transactions too (not BEGIN and COMMIT). For tests
   * that prove a cache answered, and for a metric.
   */
  readonly queryCount: number;
  /**
   * Runs `work` in one transaction: commits when it resolves, rolls back and
   * rejects when it rejects. Inside `work`, use only `tx`: a query on the
   * Database itself would run outside the transaction (postgres.js) or wait
   * for it forever (PGlite), so it is rejected.
   */
  transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Waits for running statements, then releases every connection (or the data directory). */
  close(): Promise<void>;
}

/** A jsonb object as stored and read back. */
export type JsonObject = { readonly [key: string]: unknown };

/** One page of a listing; `nextCursor` fetches the next page, and is absent on the last one. */
export interface Page<T> {
  readonly items: readonly T[];
  readonly nextCursor: string | undefined;
}

/** The most rows one page of a listing holds. */
const MAX_PAGE_SIZE = 1_000;

/** Clamps a requested page size to 1–MAX_PAGE_SIZE. */
export function pageLimit(requested: number): number {
  return Math.min(MAX_PAGE_SIZE, Math.max(1, Math.trunc(requested) || 1));
}

/**
 * Counts statements and, when `detectNestedUse` is on, refuses a query on the
 * Database from inside one of its own transactions (which would hang on
 * PGlite's single connection) with an error instead; shared by both engines so
 * they behave alike.
 *
 * The check uses AsyncLocalStorage, which on Node 20 installs a promise hook
 * for the whole process and slows every promise on the request path (about
 * 30% of the gateway's throughput in bench/). So it is off by default and on
 * in the database tests, where the misuse it catches would be written.
 */
export class StatementCounter {
  #count = 0;
  readonly #openTransaction: AsyncLocalStorage<true> | undefined;

  constructor(detectNestedUse = false) {
    this.#openTransaction = detectNestedUse ? new AsyncLocalStorage<true>() : undefined;
  }

  get count(): number {
    return this.#count;
  }

  /** Called before every statement on the Database itself. */
  countOutside(): void {
    this.assertOutsideTransaction();
    this.#count++;
  }

  /** With detectNestedUse: throws when called from inside a transaction of this Database. */
  assertOutsideTransaction(): void {
    if (this.#openTransaction?.getStore() === true) {
      throw new Error('the Database was used inside its own transaction: use the transaction passed to the callback');
    }
  }

  /** Called before every statement of a transaction. */
  countInside(): void {
    this.#count++;
  }

  /** Runs `work`, marked as inside a transaction of this Database when detectNestedUse is on. */
  runInTransaction<T>(work: () => Promise<T>): Promise<T> {
    return this.#openTransaction === undefined ? work() : this.#openTransaction.run(true, work);
  }
}
