/**
 * The embedded database's own process: runs PGlite (PgliteDatabase) for the
 * gateway that forked it and answers its requests (see embedded-protocol.ts).
 * The gateway's event loop and heap never see the engine: its WebAssembly
 * memory (hundreds of MB) and its work (the ledger flush, migrations) stay
 * here.
 *
 * It lives exactly as long as the IPC channel: when the gateway exits, or
 * dies without closing it, the channel drops and this process closes the
 * engine (releasing the data directory's lock) and exits.
 */
import type { Queryable, Transaction } from './database.js';
import { type EmbeddedReply, type EmbeddedRequest, errorFieldsOf } from './embedded-protocol.js';
import { PgliteDatabase } from './pglite-database.js';

interface OpenTransaction {
  readonly tx: Transaction;
  /** Ends the transaction: resolve commits, reject rolls back. */
  readonly end: { resolve: () => void; reject: (reason: Error) => void };
  /** Settles when the engine committed or rolled back. */
  readonly ended: Promise<void>;
}

let db: PgliteDatabase | undefined;
const transactions = new Map<number, OpenTransaction>();

function reply(message: EmbeddedReply): void {
  process.send?.(message);
}

async function answer(request: EmbeddedRequest): Promise<readonly object[] | undefined> {
  switch (request.op) {
    case 'open':
      db = await PgliteDatabase.open({ dataDir: request.dataDir, detectNestedUse: request.detectNestedUse });
      return undefined;
    case 'query':
      return target(request.tx).query(request.text, request.params);
    case 'exec':
      await transactionOf(request.tx).tx.execScript(request.script);
      return undefined;
    case 'begin':
      await begin(request.tx);
      return undefined;
    case 'commit':
    case 'rollback': {
      const open = transactionOf(request.tx);
      transactions.delete(request.tx);
      if (request.op === 'commit') {
        open.end.resolve();
        await open.ended; // A failed COMMIT is the answer's error.
      } else {
        open.end.reject(new Error('rolled back by the gateway'));
        await open.ended.catch(() => undefined);
      }
      return undefined;
    }
    case 'close':
      await closeEngine();
      return undefined;
  }
}

function engine(): PgliteDatabase {
  if (db === undefined) throw new Error('the embedded database is not open');
  return db;
}

function target(tx: number | undefined): Queryable {
  return tx === undefined ? engine() : transactionOf(tx).tx;
}

function transactionOf(tx: number): OpenTransaction {
  const open = transactions.get(tx);
  if (open === undefined) throw new Error(`no open transaction ${tx}`);
  return open;
}

/** Resolves once transaction `id` holds the engine; it stays open until commit or rollback. */
function begin(id: number): Promise<void> {
  return new Promise<void>((started, failed) => {
    let end!: OpenTransaction['end'];
    const held = new Promise<void>((resolve, reject) => (end = { resolve, reject }));
    // Assigned before the callback reads it: PGlite runs the callback only once its awaited BEGIN is done.
    let ended!: Promise<void>;
    ended = engine().transaction(async (tx) => {
      transactions.set(id, { tx, end, ended });
      started();
      await held;
    });
    // A rollback rejects `ended` on purpose; the commit/rollback answer reports it.
    ended.catch(() => undefined);
    ended.then(undefined, failed);
  });
}

async function closeEngine(): Promise<void> {
  for (const open of transactions.values()) open.end.reject(new Error('the embedded database closed'));
  transactions.clear();
  await db?.close();
  db = undefined;
}

process.on('message', (request: EmbeddedRequest) => {
  answer(request).then(
    (rows) => {
      reply(rows === undefined ? { id: request.id, ok: true } : { id: request.id, ok: true, rows });
      if (request.op === 'close') process.disconnect();
    },
    (error: unknown) => reply({ id: request.id, ok: false, error: errorFieldsOf(error) }),
  );
});

// The gateway is gone (closed the channel, exited or died): release the directory and go.
process.on('disconnect', () => {
  closeEngine().finally(() => process.exit(0));
});
