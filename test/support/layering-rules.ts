import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The layering rules as docs/architecture.md states them: each table between
 * `<!-- rules:NAME -->` and `<!-- /rules:NAME -->` is read here, so the
 * document and the test cannot say different things. Areas are written as
 * in the document (`core/`, `main.ts`) and returned without the slash.
 */

/** docs/architecture.md of this repository. */
export const ARCHITECTURE_DOC = join(import.meta.dirname, '../../docs/architecture.md');

export interface LayeringRules {
  /** Layer of each area (0 = core). */
  readonly layers: ReadonlyMap<string, number>;
  /** Packages confined to some areas: package → the areas that may import it. */
  readonly packages: ReadonlyMap<string, ReadonlySet<string>>;
  /** Areas that may import no package but `node:` built-ins. */
  readonly builtinsOnly: ReadonlySet<string>;
  /** Modules (tree paths) → the concrete implementations each may construct ({@link EVERY_IMPLEMENTATION}: any). */
  readonly factories: ReadonlyMap<string, ReadonlySet<string>>;
  /** Where each textual boundary may appear: `process.env`, `process.exit(`, `.listen(` → tree paths. */
  readonly boundaries: ReadonlyMap<string, ReadonlySet<string>>;
  /** Modules that only some modules may import: tree path → its importers. */
  readonly importersOnly: ReadonlyMap<string, ReadonlySet<string>>;
  /** Rules broken on purpose: `module|what` keys (`limiter/redis-limiter.ts|ioredis`). */
  readonly exceptions: ReadonlySet<string>;
}

/** In `factories`: the module may construct every concrete implementation (the composition root). */
export const EVERY_IMPLEMENTATION = '*';

/** The rows (cells, code spans unwrapped) of the table named `name`; throws when it is missing, or empty unless `mayBeEmpty`. */
export function rulesTable(markdown: string, name: string, mayBeEmpty = false): string[][] {
  const start = markdown.indexOf(`<!-- rules:${name} -->`);
  const end = markdown.indexOf(`<!-- /rules:${name} -->`);
  if (start === -1 || end === -1 || end < start) throw new Error(`docs/architecture.md: no table rules:${name}`);
  const rows = markdown
    .slice(start, end)
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) => line.slice(1, line.trimEnd().endsWith('|') ? line.trimEnd().length - 1 : undefined).split('|').map((cell) => cell.trim()))
    .slice(2); // the header and its --- line
  if (rows.length === 0 && !mayBeEmpty) throw new Error(`docs/architecture.md: table rules:${name} has no rows`);
  return rows;
}

/** The code spans of a cell: "`a/`, `b.ts`" → ["a/", "b.ts"]. */
function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1]!);
}

/** `core/` → `core`; `main.ts` stays. */
function areaName(written: string): string {
  return written.endsWith('/') ? written.slice(0, -1) : written;
}

/** Parses the rules tables of `markdown` (the text of docs/architecture.md). */
export function parseLayeringRules(markdown: string): LayeringRules {
  const layers = new Map<string, number>();
  for (const [layer, areas] of rulesTable(markdown, 'layers')) {
    for (const area of codeSpans(areas!)) layers.set(areaName(area), Number(layer));
  }
  const packages = new Map<string, Set<string>>();
  const builtinsOnly = new Set<string>();
  for (const [names, where] of rulesTable(markdown, 'packages')) {
    const areas = codeSpans(where!).map(areaName);
    if (names === 'any other package') {
      // "every area but `core/`": those areas may import only node: built-ins.
      if (!/^every area but /.test(where!)) throw new Error(`docs/architecture.md: rules:packages: cannot read "${where}"`);
      for (const area of areas) builtinsOnly.add(area);
      continue;
    }
    for (const name of codeSpans(names!)) packages.set(name, new Set(areas));
  }
  const factories = new Map<string, Set<string>>();
  for (const [module, classes] of rulesTable(markdown, 'constructions')) {
    factories.set(codeSpans(module!)[0]!, new Set(classes === 'every implementation' ? [EVERY_IMPLEMENTATION] : codeSpans(classes!)));
  }
  const boundaries = new Map<string, Set<string>>();
  const importersOnly = new Map<string, Set<string>>();
  for (const [what, where] of rulesTable(markdown, 'boundaries')) {
    const places = new Set(codeSpans(where!));
    const imported = /^imports of `([^`]+)`$/.exec(what!);
    if (imported !== null) importersOnly.set(imported[1]!, places);
    else for (const text of codeSpans(what!)) boundaries.set(text, places);
  }
  const exceptions = new Set<string>();
  // None may be listed: every rule then holds everywhere.
  for (const [module, breaks] of rulesTable(markdown, 'exceptions', true)) {
    exceptions.add(`${codeSpans(module!)[0]!}|${codeSpans(breaks!)[0]!}`);
  }
  return { layers, packages, builtinsOnly, factories, boundaries, importersOnly, exceptions };
}

/** The rules of this repository's docs/architecture.md. */
export function readLayeringRules(path = ARCHITECTURE_DOC): LayeringRules {
  return parseLayeringRules(readFileSync(path, 'utf8'));
}
