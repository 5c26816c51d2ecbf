import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';

/**
 * The compiled web pages (dist/ui/, written by `npm run build:ui`, see
 * scripts/build-ui.ts): one script and one style sheet per page, with
 * content-hashed names, listed by `manifest.json`. Read whole into memory
 * once at start (tens of KiB), so serving a page does no I/O.
 */

/** The pages the gateway serves: the customer dashboard and the operator page. */
export type UiPageName = 'customer' | 'operator';

/** The file names (in dist/ui/) of one page's compiled script and style sheet. */
export interface UiPageFiles {
  readonly script: string;
  readonly style: string;
}

/** dist/ui/manifest.json: each page's files, by name. */
export type UiManifest = Readonly<Record<UiPageName, UiPageFiles>>;

/** One compiled file, ready to send. */
export interface UiFile {
  readonly body: Buffer;
  readonly contentType: string;
  /** A strong ETag (quoted), from the SHA-256 of the body. */
  readonly etag: string;
}

/** The bundle as found at start: its files, or why there are none (the pages then answer 503). */
export type UiBundle =
  | { readonly ok: true; readonly manifest: UiManifest; readonly files: ReadonlyMap<string, UiFile> }
  | { readonly ok: false; readonly problem: string };

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** A hashed asset name as the build writes it: `customer-4F2K7QXA.js`; nothing else is ever served. */
const ASSET_NAME = /^[a-z]+-[A-Za-z0-9_-]{4,32}\.(js|css)$/;

/**
 * dist/ui at the repository (or image) root: under dist/src/http/ui
 * (compiled) it is `../../../ui`; under src/http/ui (tsx) `../../../dist/ui`
 * (`../../../ui` there is the pages' sources).
 */
export function uiAssetsDirectory(moduleDir: string = import.meta.dirname): string {
  const compiled = basename(resolve(moduleDir, '../..')) === 'src' && basename(resolve(moduleDir, '../../..')) === 'dist';
  return resolve(moduleDir, compiled ? '../../../ui' : '../../../dist/ui');
}

/** A strong ETag for `body`: 16 bytes of its SHA-256, base64url, quoted. */
export function etagOf(body: Buffer | string): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
}

/**
 * Reads the manifest and every file it names from `dir`. Never throws: a
 * missing or malformed bundle is a value naming the problem, which the
 * composition root logs and the pages answer with 503.
 */
export function loadUiBundle(dir: string = uiAssetsDirectory()): UiBundle {
  const manifestPath = resolve(dir, 'manifest.json');
  if (!existsSync(manifestPath)) return { ok: false, problem: `${manifestPath} is missing: build the pages with \`npm run build:ui\`` };
  try {
    const manifest = parseManifest(JSON.parse(readFileSync(manifestPath, 'utf8')) as unknown);
    const files = new Map<string, UiFile>();
    for (const page of Object.values(manifest)) {
      for (const name of [page.script, page.style]) {
        const body = readFileSync(resolve(dir, name));
        files.set(name, { body, contentType: CONTENT_TYPES[name.slice(name.lastIndexOf('.'))]!, etag: etagOf(body) });
      }
    }
    return { ok: true, manifest, files };
  } catch (error) {
    return { ok: false, problem: `the page bundle in ${dir} cannot be read (${(error as Error).message}): rebuild it with \`npm run build:ui\`` };
  }
}

function parseManifest(value: unknown): UiManifest {
  const pageOf = (name: UiPageName): UiPageFiles => {
    const page = (value as Record<string, unknown> | null)?.[name] as Record<string, unknown> | undefined;
    const script = page?.script;
    const style = page?.style;
    if (typeof script !== 'string' || !ASSET_NAME.test(script) || !script.endsWith('.js')) throw new Error(`manifest.json: ${name}.script is not a built script name`);
    if (typeof style !== 'string' || !ASSET_NAME.test(style) || !style.endsWith('.css')) throw new Error(`manifest.json: ${name}.style is not a built style sheet name`);
    return { script, style };
  };
  return { customer: pageOf('customer'), operator: pageOf('operator') };
}

/** Whether `name` has the shape of a built asset (checked before any lookup). */
export function isAssetName(name: string): boolean {
  return ASSET_NAME.test(name);
}
