import postgres from 'postgres';
import { type Database, StatementCounter, type Transaction } from './database.js';

export interface PostgresDatabaseOptions {
  /** `postgres://user:password@host:port/database[?sslmode=…]` */
  readonly url: string;
  /** Most pooled connections; they open on demand. */
  readonly maxConnections: number;
  /** The server cancels a statement that runs longer (0: never). */
  readonly statementTimeoutMs: number;
  /** Timeout of one connection attempt. */
  readonly connectTimeoutMs: number;
  /** Shown in pg_stat_activity. */
  readonly applicationName?: string;
  /** Refuse use of the Database inside its own transactions (see StatementCounter); for tests. */
  readonly detectNestedUse?: boolean;
}

/** How long close() lets running statements finish before it cuts their connections, in seconds. */
const CLOSE_TIMEOUT_SECONDS = 5;

/** int8 as a JavaScript number, as PGlite gives it (counts stay far below 2^53). */
const INT8_AS_NUMBER = {
  to: 20,
  from: [20],
  serialize: (value: number) => String(value),
  parse: (raw: string) => Number(raw),
};

/**
 * A PostgreSQL server through a postgres.js pool. Statements run with
 * `sql.unsafe(text, params)`: the text is always a constant of this code
 * base, and every value travels as a bound parameter.
 */
export class PostgresDatabase implements Database {
  readonly engine = 'postgres' as const;
  readonly #sql: postgres.Sql<{ int8: number }>;
  readonly #counter: StatementCounter;

  constructor(options: PostgresDatabaseOptions) {
    this.#counter = new StatementCounter(options.detectNestedUse ?? false);
    this.#sql = postgres(options.url, {
      max: options.maxConnections,
      connect_timeout: options.connectTimeoutMs / 1000,
      // The server's notices ("relation already exists, skipping") are not ours to print.
      onnotice: () => {},
      types: { int8: INT8_AS_NUMBER },
      connection: {
        statement_timeout: options.statementTimeoutMs,
        application_name: options.applicationName ?? 'quotagate',
      },
    });
  }

  get queryCount(): number {
    return this.#counter.count;
  }

  async query<Row extends object>(text: string, params: readonly unknown[] = []): Promise<Row[]> {
    this.#counter.countOutside();
    return rowsOf<Row>(await this.#sql.unsafe(text, params as postgres.ParameterOrJSON<never>[]));
  }

  async transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    this.#counter.assertOutsideTransaction();
    const counter = this.#counter;
    const result = await this.#sql.begin((sql) => {
      const tx: Transaction = {
        inTransaction: true,
        async query<Row extends object>(text: string, params: readonly unknown[] = []): Promise<Row[]> {
          counter.countInside();
          return rowsOf<Row>(await sql.unsafe(text, params as postgres.ParameterOrJSON<never>[]));
        },
        async execScript(script: string): Promise<void> {
          counter.countInside();
          // Without parameters postgres.js uses the simple protocol, which runs several statements.
          await sql.unsafe(script);
        },
      };
      return counter.runInTransaction(() => work(tx));
    });
    return result as T;
  }

  async close(): Promise<void> {
    await this.#sql.end({ timeout: CLOSE_TIMEOUT_SECONDS });
  }
}

/** A plain array of the rows (postgres.js returns an Array subclass with extra fields). */
function rowsOf<Row>(result: readonly object[]): Row[] {
  return Array.from(result) as Row[];
}
