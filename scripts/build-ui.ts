/**
 * Builds the web pages (ui/) into dist/ui/: per page one minified ES module
 * and one style sheet, with content-hashed names, and manifest.json naming
 * them (read by src/http/ui/ui-bundle.ts). `npm run build:ui` runs it, and
 * so do `npm run build`, `npm start` (prestart) and the browser tests'
 * global setup, so a clean clone serves the pages. Takes well under a second.
 *
 *   npx tsx scripts/build-ui.ts [outDir]   (default dist/ui)
 */
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

/** The repository root (this file is scripts/build-ui.ts). */
const ROOT = resolve(import.meta.dirname, '..');

/** Each page's entry module; its CSS comes from the stylesheet it imports. */
const PAGES = { customer: 'ui/customer/main.ts', operator: 'ui/operator/main.ts' } as const;

export type BuiltManifest = Record<keyof typeof PAGES, { script: string; style: string }>;

/** What a build wrote: the manifest and each file's size in bytes. */
export interface UiBuild {
  readonly outDir: string;
  readonly manifest: BuiltManifest;
  readonly bytes: Readonly<Record<string, number>>;
}

/**
 * Compiles the pages into `outDir`, then swaps manifest.json in (write, then
 * rename) and removes files of earlier builds, so a gateway reading the
 * directory never sees a manifest naming a file not yet written.
 */
export async function buildUi(outDir: string = resolve(ROOT, 'dist/ui')): Promise<UiBuild> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: PAGES,
    bundle: true,
    format: 'esm',
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    minify: true,
    entryNames: '[name]-[hash]',
    outdir: outDir,
    write: false,
    metafile: true,
    legalComments: 'eof',
    logLevel: 'silent',
  });
  const manifest: Partial<BuiltManifest> = {};
  for (const [path, output] of Object.entries(result.metafile.outputs)) {
    const page = (Object.keys(PAGES) as Array<keyof typeof PAGES>).find((name) => output.entryPoint === PAGES[name]);
    if (page === undefined || output.cssBundle === undefined) continue;
    manifest[page] = { script: basename(path), style: basename(output.cssBundle) };
  }
  for (const page of Object.keys(PAGES) as Array<keyof typeof PAGES>) {
    if (manifest[page] === undefined) throw new Error(`build-ui: ${PAGES[page]} produced no script with a style sheet (does it import its .css?)`);
  }
  mkdirSync(outDir, { recursive: true });
  const bytes: Record<string, number> = {};
  for (const file of result.outputFiles) {
    writeFileSync(file.path, file.contents);
    bytes[basename(file.path)] = file.contents.length;
  }
  const temporary = join(outDir, `manifest.json.${process.pid}.tmp`);
  writeFileSync(temporary, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(temporary, join(outDir, 'manifest.json'));
  const kept = new Set(['manifest.json', ...Object.keys(bytes)]);
  for (const entry of readdirSync(outDir)) {
    if (!kept.has(entry) && !entry.endsWith('.tmp')) rmSync(join(outDir, entry), { force: true });
  }
  return { outDir, manifest: manifest as BuiltManifest, bytes };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const outDir = process.argv[2] === undefined ? undefined : resolve(process.argv[2]);
  buildUi(outDir).then(
    (built) => {
      const sizes = Object.entries(built.bytes).map(([name, size]) => `${name} ${(size / 1024).toFixed(1)} KiB`);
      process.stdout.write(`build-ui: ${built.outDir}: ${sizes.join(', ')}\n`);
    },
    (error: unknown) => {
      process.stderr.write(`build-ui: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
