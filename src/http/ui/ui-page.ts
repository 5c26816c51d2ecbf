import type { HeaderPair } from '../../core/ratelimit-headers.js';
import { etagOf, isAssetName, type UiBundle, type UiFile, type UiPageName } from './ui-bundle.js';

/**
 * One web page the gateway serves (the customer dashboard, the operator
 * page), compiled when the app is built: its HTML shell (no inline script
 * or style: the page is built by its script) and its two hashed assets,
 * every answer with the same security headers. Answering does no I/O.
 */

/**
 * The policy of both pages: only this origin's script, style sheet and API
 * (`connect-src 'self'`), images from this origin or `data:` (the icon), no
 * `<base>`, no form submission (sign-in is a fetch, so a key never lands in a
 * URL), never framed.
 */
export const UI_CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Sent with every answer of a page, the 404 and 503 ones included. */
const UI_SECURITY_HEADERS: readonly HeaderPair[] = [
  ['content-security-policy', UI_CONTENT_SECURITY_POLICY],
  ['x-content-type-options', 'nosniff'],
  ['referrer-policy', 'no-referrer'],
  ['cross-origin-opener-policy', 'same-origin'],
];

/** Hashed names never change content: cached for a year. */
const ASSET_CACHE_CONTROL = 'public, max-age=31536000, immutable';
/** The HTML names the current hashes: revalidated (ETag) on every load. */
const PAGE_CACHE_CONTROL = 'no-cache';

/** An answer, for node:http or hono to write. `body` is absent for 304 and HEAD. */
export interface UiAnswer {
  readonly status: 200 | 304 | 503;
  readonly headers: readonly HeaderPair[];
  readonly body: Buffer | undefined;
}

/** A page's answers by sub-path: `''` (or `/`) the HTML, `/assets/<name>` its files; undefined for anything else. */
export interface UiPage {
  answer(subPath: string, ifNoneMatch: string | undefined, head: boolean): UiAnswer | undefined;
}

export interface UiPageOptions {
  readonly name: UiPageName;
  /** The page's path, without a trailing slash: `/_quotagate/dashboard`, `/admin/ui`. */
  readonly basePath: string;
  readonly title: string;
}

/** Compiles `options.name` from `bundle`; a bundle that is missing gives a page answering 503 with the reason. */
export function uiPage(bundle: UiBundle, options: UiPageOptions): UiPage {
  if (!bundle.ok) return unavailablePage(options.title);
  const files = bundle.manifest[options.name];
  const assetsPath = `${options.basePath}/assets/`;
  const html = Buffer.from(pageHtml(options.title, options.name, assetsPath + files.script, assetsPath + files.style));
  const shell: UiFile = { body: html, contentType: 'text/html; charset=utf-8', etag: etagOf(html) };
  const assets = new Map<string, UiFile>();
  for (const name of [files.script, files.style]) assets.set(name, bundle.files.get(name)!);
  return {
    answer(subPath, ifNoneMatch, head) {
      if (subPath === '' || subPath === '/') return fileAnswer(shell, PAGE_CACHE_CONTROL, ifNoneMatch, head);
      if (!subPath.startsWith('/assets/')) return undefined;
      const name = subPath.slice('/assets/'.length);
      const file = isAssetName(name) ? assets.get(name) : undefined;
      return file === undefined ? undefined : fileAnswer(file, ASSET_CACHE_CONTROL, ifNoneMatch, head);
    },
  };
}

function fileAnswer(file: UiFile, cacheControl: string, ifNoneMatch: string | undefined, head: boolean): UiAnswer {
  const headers: HeaderPair[] = [...UI_SECURITY_HEADERS, ['cache-control', cacheControl], ['etag', file.etag]];
  if (ifNoneMatch !== undefined && ifNoneMatch.split(',').some((tag) => tag.trim() === file.etag)) return { status: 304, headers, body: undefined };
  headers.push(['content-type', file.contentType], ['content-length', String(file.body.length)]);
  return { status: 200, headers, body: head ? undefined : file.body };
}

/** The page of a gateway whose bundle was not built: 503, no script, saying what to run. */
function unavailablePage(title: string): UiPage {
  const html = Buffer.from(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}: not available</title></head>` +
      '<body><h1>This page is not available</h1><p>The gateway was started without its page bundle (dist/ui/). ' +
      'Build it with <code>npm run build:ui</code> (or <code>npm run build</code>) and restart the gateway.</p></body></html>',
  );
  return {
    answer(subPath, _ifNoneMatch, head) {
      if (subPath !== '' && subPath !== '/' && !subPath.startsWith('/assets/')) return undefined;
      const headers: HeaderPair[] = [
        ...UI_SECURITY_HEADERS,
        ['cache-control', 'no-store'],
        ['retry-after', '60'],
        ['content-type', 'text/html; charset=utf-8'],
        ['content-length', String(html.length)],
      ];
      return { status: 503, headers, body: head ? undefined : html };
    },
  };
}

/** The HTML shell: the page's script (a module, deferred) and style sheet, and a mount point. */
function pageHtml(title: string, name: UiPageName, scriptPath: string, stylePath: string): string {
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    `<title>${title}</title>`,
    // An empty icon: the browser asks for nothing (a /favicon.ico would go to the route table).
    '<link rel="icon" href="data:,">',
    `<link rel="stylesheet" href="${stylePath}">`,
    `<script type="module" src="${scriptPath}"></script>`,
    '</head>',
    `<body class="page-${name}">`,
    '<main id="app" aria-live="polite"></main>',
    '<noscript><p>This page needs JavaScript.</p></noscript>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
