import { describe, expect, it } from 'vitest';
import { analyseTree, importsOf, packageOf, readSourceTree, SRC_DIR } from '../support/import-graph.js';
import { checkLayering } from '../support/layering-check.js';
import { parseLayeringRules, readLayeringRules } from '../support/layering-rules.js';

/**
 * The layering rules of docs/architecture.md (its `rules:*` tables, read by
 * test/support/layering-rules.ts), checked on every module under src/.
 * `npm run layering` prints the import graph these checks read.
 */

describe('reading imports (the TypeScript parser, not a regex)', () => {
  it('sees every form of import: named, type-only, side-effect, re-export, dynamic, require, across lines', () => {
    const source = [
      "import { a } from './a.js';",
      "import type { B } from './b.js';",
      "import { type C, type D } from './c.js';",
      "import { type E, f } from './e.js';",
      "import './side-effect.js';",
      "export * from './all.js';",
      "export { g } from './g.js';",
      'import {',
      '  h,',
      '  i,',
      "} from './multi-line.js';",
      "import fs = require('node:fs');",
      "const lazy = () => import('./lazy.js');",
      "// import { commented } from './commented.js';",
      "/* import './block-commented.js'; */",
      "const text = \"import './in-a-string.js'\";",
    ].join('\n');
    expect(importsOf(source)).toEqual([
      { specifier: './a.js', kind: 'import' },
      { specifier: './b.js', kind: 'type-import' },
      { specifier: './c.js', kind: 'type-import' },
      { specifier: './e.js', kind: 'import' },
      { specifier: './side-effect.js', kind: 'side-effect' },
      { specifier: './all.js', kind: 're-export' },
      { specifier: './g.js', kind: 're-export' },
      { specifier: './multi-line.js', kind: 'import' },
      { specifier: 'node:fs', kind: 'import' },
      { specifier: './lazy.js', kind: 'dynamic' },
    ]);
  });

  it('names the package of a specifier: its first segment, a scope and name, node: for built-ins', () => {
    expect(['hono/body-limit', '@hono/node-server', '@scope/pkg/deep/path', 'ioredis', 'node:fs/promises', 'fs', 'path/posix'].map(packageOf)).toEqual([
      'hono',
      '@hono/node-server',
      '@scope/pkg',
      'ioredis',
      'node:fs/promises',
      'node:fs',
      'node:path',
    ]);
  });
});

/** The rules tables of a small document: two areas per layer up to http, and one of each other rule. */
const FIXTURE_DOC = `
<!-- rules:layers -->
| Layer | Areas |
|---|---|
| 0 | \`core/\` |
| 1 | \`redis/\`, \`db/\` |
| 2 | \`http/\` |
| 3 | \`main.ts\` |
<!-- /rules:layers -->
<!-- rules:packages -->
| Package | Imported only by |
|---|---|
| \`ioredis\` | \`redis/\` |
| any other package | every area but \`core/\` |
<!-- /rules:packages -->
<!-- rules:constructions -->
| Module | May construct | Why |
|---|---|---|
| \`main.ts\` | every implementation | root |
| \`db/connect.ts\` | \`PgStore\` | picks the engine |
<!-- /rules:constructions -->
<!-- rules:boundaries -->
| What | Only in |
|---|---|
| \`process.env\` | \`main.ts\` |
| imports of \`http/listeners.ts\` | \`main.ts\` |
<!-- /rules:boundaries -->
<!-- rules:exceptions -->
| Module | Breaks | Until |
|---|---|---|
| \`db/legacy.ts\` | \`ioredis\` | later |
<!-- /rules:exceptions -->
`;

/** A tree that keeps every fixture rule; each case below breaks one. */
const GOOD_TREE: Record<string, string> = {
  'core/store.ts': 'export interface Store { get(): number }',
  'redis/client.ts': "import { Redis } from 'ioredis';\nimport type { Store } from '../core/store.js';\nexport class RedisStore implements Store { get() { return 1; } }",
  'db/pg-store.ts': "import type { Store } from '../core/store.js';\nexport class PgStore implements Store { get() { return 2; } }",
  'db/connect.ts': "import { PgStore } from './pg-store.js';\nexport const open = () => new PgStore();",
  'db/legacy.ts': "import type { Cluster } from 'ioredis';\nexport type Legacy = Cluster;",
  'http/middleware/identify.ts': "import { helper } from '../shared.js';\nexport const identify = helper;",
  'http/shared.ts': 'export const helper = 1;',
  'http/listeners.ts': 'export const listen = () => 0;',
  'main.ts':
    "import { RedisStore } from './redis/client.js';\nimport { listen } from './http/listeners.js';\nexport const store = new RedisStore();\nexport const port = process.env.PORT ?? listen();",
};

function violations(changes: Record<string, string | undefined>) {
  const files = new Map(Object.entries({ ...GOOD_TREE, ...changes }).filter((entry): entry is [string, string] => entry[1] !== undefined));
  return checkLayering(analyseTree(files), parseLayeringRules(FIXTURE_DOC));
}

const NONE = {
  unknownAreas: [],
  unresolved: [],
  wrongWay: [],
  packages: [],
  constructions: [],
  staleConstructions: [],
  boundaries: [],
  middleware: [],
  staleExceptions: [],
};

describe('the layering checks (on a small tree, against a small rules document)', () => {
  it('finds nothing in a tree that keeps the rules', () => {
    expect(violations({})).toEqual(NONE);
  });

  it('finds an import up a layer, one sideways within a layer, and a side-effect import the same way', () => {
    expect(
      violations({
        'core/up.ts': "import { open } from '../db/connect.js';\nexport const x = open;",
        'db/sideways.ts': "import '../redis/client.js';",
      }),
    ).toEqual({ ...NONE, wrongWay: ['core/up.ts → db/connect.ts', 'db/sideways.ts → redis/client.ts'] });
  });

  it('finds an area without a layer and a relative import of no module', () => {
    expect(violations({ 'extra/x.ts': "export * from '../core/missing.js';" })).toEqual({
      ...NONE,
      unknownAreas: ['extra'],
      unresolved: ['extra/x.ts: ../core/missing.js'],
    });
  });

  it('finds a confined package outside its areas, and any package in core/, counting type-only imports', () => {
    expect(
      violations({
        'http/cache.ts': "import type { Redis } from 'ioredis';\nexport type R = Redis;",
        'core/clock.ts': "import { LRUCache } from 'lru-cache';\nimport { setTimeout } from 'node:timers';\nexport const c = [LRUCache, setTimeout];",
      }),
    ).toEqual({ ...NONE, packages: ['http/cache.ts imports ioredis', 'core/clock.ts imports lru-cache'] });
  });

  it('finds an implementation constructed outside the root, its own module and its factories; and a table row that no longer holds', () => {
    expect(
      violations({
        'http/shared.ts': "import { PgStore } from '../db/pg-store.js';\nexport const helper = new PgStore();",
        'db/connect.ts': 'export const open = () => undefined;',
      }),
    ).toEqual({ ...NONE, constructions: ['http/shared.ts constructs PgStore (of db/pg-store.ts)'], staleConstructions: ['db/connect.ts: does not construct PgStore'] });
  });

  it('finds process.env outside its places (not in comments), and an import of a module only some may import', () => {
    expect(
      violations({
        'http/shared.ts': "// process.env is read by main.ts only\nimport { listen } from './listeners.js';\nexport const helper = process.env.HOME ?? listen();",
      }),
    ).toEqual({ ...NONE, boundaries: ['http/shared.ts uses process.env', 'http/shared.ts imports http/listeners.ts'] });
  });

  it('finds a pipeline step importing another step or a route', () => {
    expect(
      violations({
        'http/middleware/limit.ts': "import { identify } from './identify.js';\nimport { usage } from '../routes/usage.js';\nexport const limit = [identify, usage];",
        'http/routes/usage.ts': 'export const usage = 1;',
      }),
    ).toEqual({ ...NONE, middleware: ['http/middleware/limit.ts → http/middleware/identify.ts', 'http/middleware/limit.ts → http/routes/usage.ts'] });
  });

  it('reports an exception that no violation needs any more', () => {
    expect(violations({ 'db/legacy.ts': 'export type Legacy = number;' })).toEqual({ ...NONE, staleExceptions: ['db/legacy.ts|ioredis'] });
  });
});

describe('src/ keeps the rules of docs/architecture.md', () => {
  const tree = readSourceTree(SRC_DIR);
  const rules = readLayeringRules();
  const report = checkLayering(tree, rules);

  it('reads the rules tables of docs/architecture.md', () => {
    expect([rules.layers.get('core'), rules.layers.get('http'), rules.layers.get('main.ts')]).toEqual([0, 4, 6]);
    expect([...rules.packages.get('ioredis')!]).toEqual(['redis']);
    expect([...rules.builtinsOnly]).toEqual(['core']);
  });

  it('knows the layer of every area under src/, and every relative import names a module', () => {
    expect(report.unknownAreas).toEqual([]);
    expect(report.unresolved).toEqual([]);
  });

  it('has no import that points up or sideways', () => {
    expect(report.wrongWay).toEqual([]);
  });

  it('imports each confined package only where its row allows, and core/ only node: built-ins', () => {
    expect(report.packages).toEqual([]);
  });

  it('constructs concrete implementations only in the composition root, their own modules and the listed factories', () => {
    expect(report.constructions).toEqual([]);
    expect(report.staleConstructions).toEqual([]);
  });

  it('keeps process.env, process.exit() and listen() in the entry points, and http/listeners.ts imported by main.ts alone', () => {
    expect(report.boundaries).toEqual([]);
    expect(tree.filter((module) => module.localImports.some((local) => local.path === 'http/listeners.ts')).map((module) => module.path)).toEqual(['main.ts']);
  });

  it('has no pipeline step importing a route or another step', () => {
    expect(report.middleware).toEqual([]);
  });

  it('lists only exceptions that are still needed', () => {
    expect(report.staleExceptions).toEqual([]);
  });
});
