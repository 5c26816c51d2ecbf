import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSubject, getSubject } from '../../src/db/subjects.js';
import { loadMigrations, migrate } from '../../src/db/migrations.js';
import { IN_MEMORY, PgliteDatabase } from '../../src/db/pglite-database.js';
import { databaseContract } from '../contract/database.contract.js';
import { within } from '../support/within.js';

databaseContract('PGlite (in memory)', () => PgliteDatabase.open({ dataDir: IN_MEMORY, detectNestedUse: true }));

describe('PgliteDatabase in a data directory', () => {
  const dirs: string[] = [];
  const freshDir = () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'quotagate-pglite-')), 'nested', 'data');
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(join(dir, '..', '..'), { recursive: true, force: true });
  });

  it('creates the directory, and keeps the data across close and reopen', async () => {
    const dataDir = freshDir();
    const first = await PgliteDatabase.open({ dataDir });
    await migrate(first, loadMigrations());
    await first.transaction((tx) => createSubject(tx, { id: 'acme', plan: 'pro' }));
    await first.close();
    const second = await PgliteDatabase.open({ dataDir });
    try {
      expect(await migrate(second, loadMigrations())).toMatchObject({ applied: [] });
      expect((await getSubject(second, 'acme'))?.plan).toBe('pro');
    } finally {
      await second.close();
    }
  });

  it('holds a lock file while open, and refuses a second open in the same process', async () => {
    const dataDir = freshDir();
    const db = await PgliteDatabase.open({ dataDir });
    try {
      expect(readFileSync(join(dataDir, 'quotagate.lock'), 'utf8')).toBe(`${process.pid}\n`);
      await expect(PgliteDatabase.open({ dataDir })).rejects.toThrow(`${dataDir} is already open in this process`);
    } finally {
      await db.close();
    }
    expect(existsSync(join(dataDir, 'quotagate.lock'))).toBe(false);
  });

  it('refuses a directory that another live process holds, naming it', async () => {
    const dataDir = freshDir();
    await (await PgliteDatabase.open({ dataDir })).close();
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      writeFileSync(join(dataDir, 'quotagate.lock'), `${holder.pid}\n`);
      await expect(PgliteDatabase.open({ dataDir })).rejects.toThrow(
        `${dataDir} is in use by process ${holder.pid}; the embedded database allows one process at a time`,
      );
    } finally {
      holder.kill('SIGKILL');
      await within(new Promise((resolve) => holder.once('exit', resolve)), 5_000, 'the lock holder to exit');
    }
  });

  it('takes over a lock left by a process that is gone', async () => {
    const dataDir = freshDir();
    await (await PgliteDatabase.open({ dataDir })).close();
    const gone = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await within(new Promise((resolve) => gone.once('exit', resolve)), 5_000, 'a short-lived process to exit');
    writeFileSync(join(dataDir, 'quotagate.lock'), `${gone.pid}\n`);
    const db = await PgliteDatabase.open({ dataDir });
    expect(readFileSync(join(dataDir, 'quotagate.lock'), 'utf8')).toBe(`${process.pid}\n`);
    await db.close();
  });
});
