import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeDatabase } from '../../src/db/connect.js';
import { isDatabaseUnavailable, isUniqueViolation } from '../../src/db/errors.js';
import { loadMigrations, MigrationError, migrationsDirectory } from '../../src/db/migrations.js';

const ROOT = resolve(import.meta.dirname, '../..');

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'quotagate-migrations-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('migration files', () => {
  it('live in migrations/ at the root, found from src/db (tsx) and from dist/src/db (compiled image)', () => {
    expect(migrationsDirectory(join(ROOT, 'src/db'))).toBe(join(ROOT, 'migrations'));
    const image = mkdtempSync(join(tmpdir(), 'quotagate-image-'));
    mkdirSync(join(image, 'migrations'));
    writeFileSync(join(image, 'migrations/001_initial.sql'), '');
    expect(migrationsDirectory(join(image, 'dist/src/db'))).toBe(join(image, 'migrations'));
    expect(() => migrationsDirectory(join(tmpdir(), 'nowhere/src/db'))).toThrow(/001_initial\.sql not found/);
  });

  it('are copied into the image by the Dockerfile', () => {
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toMatch(/^COPY .*\bmigrations \.\/migrations$/m);
  });

  it('load in version order with name and checksum, ignoring files that are not .sql', () => {
    const dir = dirWith({ '010_later.sql': 'SELECT 10;\n', '002_second.sql': 'SELECT 2;\n', 'README.md': '# notes' });
    expect(loadMigrations(dir)).toEqual([
      { version: 2, name: 'second', fileName: '002_second.sql', sql: 'SELECT 2;\n', checksum: createHash('sha256').update('SELECT 2;\n').digest('hex') },
      { version: 10, name: 'later', fileName: '010_later.sql', sql: 'SELECT 10;\n', checksum: expect.stringMatching(/^[0-9a-f]{64}$/) },
    ]);
  });

  it('have the same checksum with CRLF line endings (a Windows checkout)', () => {
    const [unix] = loadMigrations(dirWith({ '001_a.sql': 'SELECT 1;\nSELECT 2;\n' }));
    const [windows] = loadMigrations(dirWith({ '001_a.sql': 'SELECT 1;\r\nSELECT 2;\r\n' }));
    expect(windows!.checksum).toBe(unix!.checksum);
  });

  it('refuse a badly named file and a repeated version', () => {
    const badName = dirWith({ '1-initial.sql': '' });
    expect(() => loadMigrations(badName)).toThrow(new MigrationError(`${join(badName, '1-initial.sql')}: expected a name like 001_initial.sql`));
    expect(() => loadMigrations(dirWith({ '002_a.sql': '', '002_b.sql': '' }))).toThrow('002_a.sql and 002_b.sql share version 2');
  });

  it('as shipped, start at 001 and leave no gap', () => {
    const versions = loadMigrations().map((m) => m.version);
    expect(versions).toEqual(versions.map((_, i) => i + 1));
  });
});

describe('describeDatabase', () => {
  const base = { data_dir: './data', max_connections: 10, statement_timeout_ms: 5_000, connect_timeout_ms: 5_000, replica_max_lag_ms: 1_000 };

  it('names the server and database, never the credentials', () => {
    expect(describeDatabase({ ...base, url: 'postgres://qg:s3cret@db.internal:5433/quotagate?sslmode=require' })).toBe(
      'postgres db.internal:5433/quotagate',
    );
  });

  it('names the data directory of the embedded engine', () => {
    expect(describeDatabase(base)).toBe('embedded ./data');
  });
});

describe('database error classes', () => {
  it('tells an unreachable or overloaded server from a failing statement', () => {
    for (const code of ['ECONNREFUSED', 'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', '08006', '57P01', '57P03', '57014', '53300']) {
      expect(isDatabaseUnavailable(Object.assign(new Error(code), { code }))).toBe(true);
    }
    for (const error of [Object.assign(new Error('dup'), { code: '23505' }), new Error('plain'), undefined, 'text']) {
      expect(isDatabaseUnavailable(error)).toBe(false);
    }
  });

  it('recognises a unique violation', () => {
    expect(isUniqueViolation(Object.assign(new Error('dup'), { code: '23505' }))).toBe(true);
    expect(isUniqueViolation(Object.assign(new Error('fk'), { code: '23503' }))).toBe(false);
  });
});
