import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Dependencies point one way (STYLE.md §2):
 * core ← config ← {redis, db, metrics} ← {limiter, auth, proxy, usage, admin} ← {http} ← {app, reload, cli} ← main ← bin.
 * A module may import from its own area or from a lower layer; never from a
 * higher layer, nor from another area of its own layer.
 */
const LAYER: Record<string, number> = {
  core: 0,
  config: 1,
  redis: 2,
  db: 2,
  metrics: 2,
  limiter: 3,
  auth: 3,
  proxy: 3,
  usage: 3,
  admin: 3,
  http: 4,
  'app.ts': 5,
  'reload.ts': 5,
  cli: 5,
  'main.ts': 6,
  'bin.ts': 7,
};

const SRC = resolve(import.meta.dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

function areaOf(file: string): string {
  return relative(SRC, file).split('/')[0]!;
}

function relativeImports(source: string): string[] {
  const specifiers: string[] = [];
  for (const match of source.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)) {
    specifiers.push(match[1]!);
  }
  for (const match of source.matchAll(/import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) specifiers.push(match[1]!);
  return specifiers;
}

function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

describe('module layering', () => {
  const files = sourceFiles(SRC);

  it('knows the layer of every area under src/', () => {
    const unknown = [...new Set(files.map(areaOf))].filter((area) => LAYER[area] === undefined);
    expect(unknown).toEqual([]);
  });

  it('has no import that points up or sideways', () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = areaOf(file);
      for (const specifier of relativeImports(readFileSync(file, 'utf8'))) {
        const target = resolve(dirname(file), specifier);
        const to = areaOf(target);
        if (to === from) continue;
        if (LAYER[to]! >= LAYER[from]!) violations.push(`${relative(SRC, file)} → ${relative(SRC, target)}`);
      }
    }
    expect(violations).toEqual([]);
  });

  // The entry points of processes: the gateway's, and the embedded database's own process.
  const entryPoints = ['/main.ts', '/bin.ts', '/db/embedded-database-process.ts'];

  it('keeps process.env and process.exit() in the processes\' entry points', () => {
    const offenders = files
      .filter((file) => !entryPoints.some((entry) => file.endsWith(entry)))
      .filter((file) => /process\.env|process\.exit\(/.test(withoutComments(readFileSync(file, 'utf8'))))
      .map((file) => relative(SRC, file));
    expect(offenders).toEqual([]);
  });

  it('keeps listen() in the entry points and the listener module (http/listeners.ts) that only main.ts imports', () => {
    const offenders = files
      .filter((file) => ![...entryPoints, '/http/listeners.ts'].some((entry) => file.endsWith(entry)))
      .filter((file) => /\.listen\(/.test(withoutComments(readFileSync(file, 'utf8'))))
      .map((file) => relative(SRC, file));
    expect(offenders).toEqual([]);
    const importers = files
      .filter((file) => relativeImports(readFileSync(file, 'utf8')).some((specifier) => resolve(dirname(file), specifier) === join(SRC, 'http/listeners.js')))
      .map((file) => relative(SRC, file));
    expect(importers).toEqual(['main.ts']);
  });
});
