import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Database, StatementCounter, type Transaction } from './database.js';
import { IN_MEMORY } from './pglite-database.js';
import { EmbeddedDatabaseError, type EmbeddedReply, type EmbeddedRequest } from './embedded-protocol.js';

export interface EmbeddedDatabaseOptions {
  /** A directory (created if missing), or `memory://`. */
  readonly dataDir: string;
  /** Refuse use of the Database inside its own transactions (see StatementCounter); for tests. */
  readonly detectNestedUse?: boolean;
}

/** Distributes the union over its members, so `id` can be left out of each. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** How long close() waits for the process to exit before killing it, in ms. */
const CLOSE_GRACE_MS = 5_000;

/**
 * The embedded engine (PGlite) in a process of its own, forked by the
 * gateway: the same Database as PgliteDatabase — same statements, values and
 * errors (SQLSTATE in `code`), one statement at a time, the data directory's
 * lock — but the engine's WebAssembly memory and its work run outside the
 * gateway's heap and event loop, so they neither grow the gateway's RSS
 * nor stall its requests (issue: the embedded default held ~600 MiB and
 * caused p99 stalls in the serving process).
 *
 * Each statement is one message each way over the IPC channel (structured
 * clone). If the process dies, every pending and later statement rejects
 * with code `CONNECTION_CLOSED`, which callers treat as the database being
 * unavailable (db/errors.ts); it is not restarted (an in-memory database
 * would come back empty).
 */
export class EmbeddedDatabase implements Database {
  readonly engine = 'pglite' as const;
  readonly #child: ChildProcess;
  readonly #counter: StatementCounter;
  readonly #pending = new Map<number, { resolve: (rows: readonly object[] | undefined) => void; reject: (error: Error) => void }>();
  #nextId = 1;
  #nextTransaction = 1;
  #gone: string | undefined;
  readonly #exited: Promise<void>;

  private constructor(child: ChildProcess, detectNestedUse: boolean) {
    this.#child = child;
    this.#counter = new StatementCounter(detectNestedUse);
    child.on('message', (message: EmbeddedReply) => this.#settle(message));
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#fail(`the embedded database process exited (${signal ?? `code ${code}`})`);
        resolve();
      });
    });
    child.once('error', (error) => this.#fail(`the embedded database process failed: ${error.message}`));
  }

  /**
   * Forks the engine's process and opens the database in `options.dataDir`
   * there. A data directory without a database yet is created first by a
   * process of its own that then exits: creating one (initdb) leaves the
   * engine about 730 MiB resident for good, reopening it about 180 MiB.
   */
  static async open(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
    if (options.dataDir !== IN_MEMORY && !existsSync(join(resolve(options.dataDir), 'PG_VERSION'))) {
      await (await EmbeddedDatabase.start(options)).close();
    }
    return EmbeddedDatabase.start(options);
  }

  private static async start(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
    const db = new EmbeddedDatabase(forkEngineProcess(), options.detectNestedUse ?? false);
    try {
      await db.#call({ op: 'open', dataDir: options.dataDir, detectNestedUse: options.detectNestedUse ?? false });
    } catch (error) {
      await db.#stop();
      throw error;
    }
    return db;
  }

  get queryCount(): number {
    return this.#counter.count;
  }

  /** The engine process's pid (for measuring its memory). */
  get enginePid(): number | undefined {
    return this.#child.pid;
  }

  async query<Row extends object>(text: string, params: readonly unknown[] = []): Promise<Row[]> {
    this.#counter.countOutside();
    return ((await this.#call({ op: 'query', text, params })) ?? []) as Row[];
  }

  async transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    this.#counter.assertOutsideTransaction();
    const id = this.#nextTransaction++;
    await this.#call({ op: 'begin', tx: id });
    const counter = this.#counter;
    const call = (request: WithoutId<EmbeddedRequest>) => this.#call(request);
    const tx: Transaction = {
      inTransaction: true,
      async query<Row extends object>(text: string, params: readonly unknown[] = []): Promise<Row[]> {
        counter.countInside();
        return ((await call({ op: 'query', text, params, tx: id })) ?? []) as Row[];
      },
      async execScript(script: string): Promise<void> {
        counter.countInside();
        await call({ op: 'exec', script, tx: id });
      },
    };
    let result: T;
    try {
      result = await counter.runInTransaction(() => work(tx));
    } catch (error) {
      // The rollback's own failure (the process died) must not hide why the work failed.
      await this.#call({ op: 'rollback', tx: id }).catch(() => undefined);
      throw error;
    }
    await this.#call({ op: 'commit', tx: id });
    return result;
  }

  async close(): Promise<void> {
    if (this.#gone === undefined) await this.#call({ op: 'close' }).catch(() => undefined);
    await this.#stop();
  }

  /** Waits for the process to exit (it does after `close`, or when the channel drops), killing it after CLOSE_GRACE_MS. */
  async #stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      if (this.#child.connected) this.#child.disconnect();
      const kill = setTimeout(() => this.#child.kill('SIGKILL'), CLOSE_GRACE_MS);
      await this.#exited;
      clearTimeout(kill);
    }
  }

  #call(request: WithoutId<EmbeddedRequest>): Promise<readonly object[] | undefined> {
    if (this.#gone !== undefined) return Promise.reject(connectionClosed(this.#gone));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#child.send({ ...request, id } as EmbeddedRequest, (error) => {
        if (error === null || error === undefined) return;
        this.#pending.delete(id);
        reject(connectionClosed(`the embedded database process is unreachable: ${error.message}`));
      });
    });
  }

  #settle(message: EmbeddedReply): void {
    const pending = this.#pending.get(message.id);
    if (pending === undefined) return;
    this.#pending.delete(message.id);
    if (message.ok) pending.resolve(message.rows);
    else pending.reject(new EmbeddedDatabaseError(message.error));
  }

  #fail(reason: string): void {
    this.#gone ??= reason;
    for (const pending of this.#pending.values()) pending.reject(connectionClosed(reason));
    this.#pending.clear();
  }
}

/** A statement that never reached the engine, or whose answer never came: the database is unavailable. */
function connectionClosed(reason: string): EmbeddedDatabaseError {
  return new EmbeddedDatabaseError({ message: reason, code: 'CONNECTION_CLOSED' });
}

/**
 * Forks embedded-database-process beside this module: the compiled `.js`
 * with plain Node, or under tsx (`npm start`, the tests) the `.ts` source
 * with tsx's loader. No other flag of this process is passed on (a
 * `--cpu-prof` or `--inspect` of the gateway stays the gateway's).
 */
function forkEngineProcess(): ChildProcess {
  const source = import.meta.url.endsWith('.ts');
  const entry = fileURLToPath(new URL(`./embedded-database-process.${source ? 'ts' : 'js'}`, import.meta.url));
  return fork(entry, [], {
    serialization: 'advanced',
    // tsx's loader by absolute URL: `--import tsx` would be looked up from the working directory.
    execArgv: source ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] : [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}
