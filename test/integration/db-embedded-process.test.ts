import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedDatabase } from '../../src/db/embedded-database.js';
import { isDatabaseUnavailable, isUniqueViolation } from '../../src/db/errors.js';
import { loadMigrations, migrate } from '../../src/db/migrations.js';
import { IN_MEMORY } from '../../src/db/pglite-database.js';
import { createSubject, getSubject } from '../../src/db/subjects.js';
import { databaseContract } from '../contract/database.contract.js';
import { within } from '../support/within.js';

// The same contract as PgliteDatabase in this process: every statement, value and error crosses the IPC channel.
databaseContract('PGlite in its own process (in memory)', () => EmbeddedDatabase.open({ dataDir: IN_MEMORY, detectNestedUse: true }));

/** Resolves once process `pid` is gone. */
async function exitOf(pid: number): Promise<void> {
  await within(
    (async () => {
      for (;;) {
        try {
          process.kill(pid, 0);
        } catch {
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })(),
    10_000,
    `process ${pid} to exit`,
  );
}

describe('EmbeddedDatabase: PGlite in a process of its own', () => {
  const dirs: string[] = [];
  const freshDir = () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'quotagate-embedded-')), 'data');
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(join(dir, '..'), { recursive: true, force: true });
  });

  it('runs the engine in another process, which holds the data directory lock and releases it on close', async () => {
    const dataDir = freshDir();
    const db = await EmbeddedDatabase.open({ dataDir });
    const pid = db.enginePid!;
    expect(pid).not.toBe(process.pid);
    expect(readFileSync(join(dataDir, 'quotagate.lock'), 'utf8')).toBe(`${pid}\n`);
    await migrate(db, loadMigrations());
    await db.transaction((tx) => createSubject(tx, { id: 'acme', plan: 'pro' }));
    await db.close();
    await exitOf(pid);
    expect(existsSync(join(dataDir, 'quotagate.lock'))).toBe(false);

    const again = await EmbeddedDatabase.open({ dataDir });
    try {
      expect((await getSubject(again, 'acme'))?.plan).toBe('pro');
    } finally {
      await again.close();
    }
  });

  it('refuses a second open of a directory it holds, with the lock message', async () => {
    const dataDir = freshDir();
    const db = await EmbeddedDatabase.open({ dataDir });
    try {
      await expect(EmbeddedDatabase.open({ dataDir })).rejects.toThrow(
        `${dataDir} is in use by process ${db.enginePid}; the embedded database allows one process at a time`,
      );
    } finally {
      await db.close();
    }
  });

  it('carries PostgreSQL errors across with their SQLSTATE, and rolls a failed transaction back', async () => {
    const db = await EmbeddedDatabase.open({ dataDir: IN_MEMORY });
    try {
      await migrate(db, loadMigrations());
      await db.transaction((tx) => createSubject(tx, { id: 'acme', plan: 'pro' }));
      await db.query('CREATE TABLE uniques (name text PRIMARY KEY)');
      await db.query(`INSERT INTO uniques VALUES ('a')`);
      const duplicate = await db.query(`INSERT INTO uniques VALUES ('a')`).catch((error: unknown) => error);
      expect(isUniqueViolation(duplicate)).toBe(true);
      expect(duplicate).toMatchObject({ constraint: 'uniques_pkey', table: 'uniques' });
      await expect(
        db.transaction(async (tx) => {
          await createSubject(tx, { id: 'rolled-back', plan: 'pro' });
          throw new Error('the work failed');
        }),
      ).rejects.toThrow('the work failed');
      expect(await getSubject(db, 'rolled-back')).toBeUndefined();
      // Dates and jsonb come back typed, as from PGlite in process.
      const [row] = await db.query<{ at: Date; doc: { a: number[] } }>(`SELECT $1::timestamptz AS at, $2::jsonb AS doc`, [
        new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)),
        { a: [1, 2] },
      ]);
      expect(row!.at).toEqual(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)));
      expect(row!.doc).toEqual({ a: [1, 2] });
    } finally {
      await db.close();
    }
  });

  it('answers every statement as unavailable once its process is gone, never hangs', async () => {
    const db = await EmbeddedDatabase.open({ dataDir: IN_MEMORY });
    const pid = db.enginePid!;
    const running = db.query('SELECT pg_sleep(2)');
    process.kill(pid, 'SIGKILL');
    const lost = await within(running.catch((error: unknown) => error), 10_000, 'the running statement to fail');
    expect(isDatabaseUnavailable(lost)).toBe(true);
    const later = await db.query('SELECT 1').catch((error: unknown) => error);
    expect(isDatabaseUnavailable(later)).toBe(true);
    expect(String(later)).toContain('the embedded database process exited (SIGKILL)');
    await db.close();
  });

  it('exits and releases the data directory when the gateway dies without closing it (kill -9)', async () => {
    const dataDir = freshDir();
    const module = pathToFileURL(resolve(import.meta.dirname, '../../src/db/embedded-database.ts')).href;
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const gateway = spawn(
      process.execPath,
      ['--import', tsx, '-e', `import(${JSON.stringify(module)}).then(async ({ EmbeddedDatabase }) => {
        const db = await EmbeddedDatabase.open({ dataDir: ${JSON.stringify(dataDir)} });
        console.log('engine ' + db.enginePid);
        setInterval(() => {}, 1000);
      })`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const enginePid = await within(
        new Promise<number>((resolvePid) => {
          let out = '';
          gateway.stdout!.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            const match = /engine (\d+)/.exec(out);
            if (match) resolvePid(Number(match[1]));
          });
        }),
        60_000,
        'the engine process to start',
      );
      expect(readFileSync(join(dataDir, 'quotagate.lock'), 'utf8')).toBe(`${enginePid}\n`);
      gateway.kill('SIGKILL');
      await exitOf(enginePid);
      expect(existsSync(join(dataDir, 'quotagate.lock'))).toBe(false);
    } finally {
      gateway.kill('SIGKILL');
    }
  });
});
