import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PGlite, types } from '@electric-sql/pglite';
import { type Database, StatementCounter, type Transaction } from './database.js';
import { isProcessAlive } from './process-liveness.js';

/** The data directory that keeps nothing: everything is lost at close. */
export const IN_MEMORY = 'memory://';

export interface PgliteDatabaseOptions {
  /** A directory (created if missing), or `memory://`. */
  readonly dataDir: string;
  /** Refuse use of the Database inside its own transactions (see StatementCounter); for tests. */
  readonly detectNestedUse?: boolean;
}

/**
 * The embedded engine: PostgreSQL compiled to WebAssembly, in this process,
 * with its files under a data directory. It runs one statement at a time, so
 * a pool, timeouts and advisory locks have nothing to do.
 *
 * PGlite itself does not stop two processes from opening one directory, which
 * would corrupt it; `open` takes a lock file (`quotagate.lock`, holding the
 * pid) and refuses a directory that a live process holds.
 */
/**
 * PostgreSQL settings of the embedded engine. Its tables (keys, subjects,
 * the ledger) are small, and PostgreSQL's default 128 MB of shared buffers
 * is most of what PGlite's WebAssembly memory holds: 16 MB keeps about
 * 100 MB less resident (measured: 711 → 606 MiB RSS for PGlite alone).
 */
const EMBEDDED_SETTINGS: readonly string[] = ['shared_buffers=16MB'];

export class PgliteDatabase implements Database {
  readonly engine = 'pglite' as const;
  readonly #counter: StatementCounter;

  readonly #pg: PGlite;
  readonly #lockFile: string | undefined;

  private constructor(pg: PGlite, lockFile: string | undefined, detectNestedUse: boolean) {
    this.#pg = pg;
    this.#lockFile = lockFile;
    this.#counter = new StatementCounter(detectNestedUse);
  }

  /** Opens (or creates) the database in `options.dataDir`, sized for a gateway's small tables (see EMBEDDED_SETTINGS). */
  static async open(options: PgliteDatabaseOptions): Promise<PgliteDatabase> {
    let lockFile: string | undefined;
    let dataDir = options.dataDir;
    if (dataDir !== IN_MEMORY) {
      dataDir = resolve(dataDir);
      mkdirSync(dataDir, { recursive: true });
      lockFile = lockDataDir(dataDir);
    }
    try {
      const pg = await PGlite.create(dataDir, {
        parsers: { [types.INT8]: (raw: string) => Number(raw) },
        postgresqlconf: [...EMBEDDED_SETTINGS],
      });
      return new PgliteDatabase(pg, lockFile, options.detectNestedUse ?? false);
    } catch (error) {
      if (lockFile !== undefined) rmSync(lockFile, { force: true });
      throw error;
    }
  }

  get queryCount(): number {
    return this.#counter.count;
  }

  async query<Row extends object>(text: string, params: readonly unknown[] = []): Promise<Row[]> {
    this.#counter.countOutside();
    return (await this.#pg.query<Row>(text, params as unknown[])).rows;
  }

  transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    this.#counter.assertOutsideTransaction();
    const counter = this.#counter;
    return this.#pg.transaction((pgTx) => {
      const tx: Transaction = {
        inTransaction: true,
        async query<Row extends object>(text: string, params: readonly unknown[] = []): Promise<Row[]> {
          counter.countInside();
          return (await pgTx.query<Row>(text, params as unknown[])).rows;
        },
        async execScript(script: string): Promise<void> {
          counter.countInside();
          await pgTx.exec(script);
        },
      };
      return counter.runInTransaction(() => work(tx));
    });
  }

  async close(): Promise<void> {
    if (!this.#pg.closed) await this.#pg.close();
    if (this.#lockFile !== undefined) rmSync(this.#lockFile, { force: true });
  }
}

const LOCK_FILE = 'quotagate.lock';

/** Takes `<dataDir>/quotagate.lock` for this process; a lock left by a dead process is taken over. */
function lockDataDir(dataDir: string): string {
  const lockFile = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockFile, `${process.pid}\n`, { flag: 'wx' });
      return lockFile;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number.parseInt(readFileSync(lockFile, 'utf8'), 10);
    if (Number.isInteger(holder) && holder !== process.pid && isProcessAlive(holder)) {
      throw new Error(
        `${dataDir} is in use by process ${holder}; the embedded database allows one process at a time ` +
          `(stop it, or remove ${lockFile} if that process is not quotagate)`,
      );
    }
    if (holder === process.pid) {
      throw new Error(`${dataDir} is already open in this process`);
    }
    rmSync(lockFile, { force: true });
  }
  throw new Error(`could not take ${lockFile}`);
}

