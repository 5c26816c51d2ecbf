import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isDashboardRequest } from '../../src/http/routes/customer-dashboard.js';
import { etagOf, loadUiBundle, uiAssetsDirectory } from '../../src/http/ui/ui-bundle.js';
import { UI_CONTENT_SECURITY_POLICY, uiPage, type UiAnswer } from '../../src/http/ui/ui-page.js';

/** The pages as served from a bundle on disk (src/http/ui): shell, assets, caching, and a missing bundle's 503. */

const scratch = mkdtempSync(join(tmpdir(), 'quotagate-ui-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const MANIFEST = {
  customer: { script: 'customer-AAAA1111.js', style: 'customer-BBBB2222.css' },
  operator: { script: 'operator-CCCC3333.js', style: 'operator-DDDD4444.css' },
};

/** A bundle directory holding `manifest` and a small file for each name it lists (unless `skip`). */
function bundleDir(name: string, manifest: unknown, skip: readonly string[] = []): string {
  const dir = join(scratch, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  for (const page of Object.values(MANIFEST)) {
    for (const file of [page.script, page.style]) if (!skip.includes(file)) writeFileSync(join(dir, file), `/* ${file} */`);
  }
  return dir;
}

const header = (answer: UiAnswer | undefined, name: string) => answer?.headers.find(([key]) => key === name)?.[1];

describe('the page bundle (dist/ui)', () => {
  it('serves the HTML shell naming its hashed files under the page path, with no inline script or style', () => {
    const page = uiPage(loadUiBundle(bundleDir('good', MANIFEST)), { name: 'customer', basePath: '/_quotagate/dashboard', title: 'Your API usage' });
    const shell = page.answer('', undefined, false)!;
    expect(shell.status).toBe(200);
    const html = shell.body!.toString();
    expect(html).toContain('<script type="module" src="/_quotagate/dashboard/assets/customer-AAAA1111.js"></script>');
    expect(html).toContain('<link rel="stylesheet" href="/_quotagate/dashboard/assets/customer-BBBB2222.css">');
    expect(html).not.toMatch(/<script>|<style|\sstyle=|\son\w+=/);
    expect(header(shell, 'content-type')).toBe('text/html; charset=utf-8');
    expect(header(shell, 'cache-control')).toBe('no-cache');
    expect(header(shell, 'content-security-policy')).toBe(UI_CONTENT_SECURITY_POLICY);
    expect(header(shell, 'x-content-type-options')).toBe('nosniff');
    expect(header(shell, 'referrer-policy')).toBe('no-referrer');
    expect(page.answer('/', undefined, false)?.status).toBe(200);
  });

  it("serves only the page's own files, cached for a year, revalidated by ETag, and none for HEAD", () => {
    const page = uiPage(loadUiBundle(bundleDir('assets', MANIFEST)), { name: 'operator', basePath: '/admin/ui', title: 'operator' });
    const script = page.answer('/assets/operator-CCCC3333.js', undefined, false)!;
    expect(script.status).toBe(200);
    expect(script.body!.toString()).toBe('/* operator-CCCC3333.js */');
    expect(header(script, 'content-type')).toBe('text/javascript; charset=utf-8');
    expect(header(script, 'cache-control')).toBe('public, max-age=31536000, immutable');
    expect(header(script, 'etag')).toBe(etagOf('/* operator-CCCC3333.js */'));
    expect(header(page.answer('/assets/operator-DDDD4444.css', undefined, false), 'content-type')).toBe('text/css; charset=utf-8');
    const revalidated = page.answer('/assets/operator-CCCC3333.js', `"other", ${header(script, 'etag')}`, false)!;
    expect([revalidated.status, revalidated.body]).toEqual([304, undefined]);
    const head = page.answer('/assets/operator-CCCC3333.js', undefined, true)!;
    expect([head.status, head.body, header(head, 'content-length')]).toEqual([200, undefined, String(script.body!.length)]);
    // Another page's file, the manifest, a path outside: not this page's.
    expect(page.answer('/assets/customer-AAAA1111.js', undefined, false)).toBeUndefined();
    expect(page.answer('/assets/manifest.json', undefined, false)).toBeUndefined();
    expect(page.answer('/assets/../manifest.json', undefined, false)).toBeUndefined();
    expect(page.answer('/other', undefined, false)).toBeUndefined();
  });

  it('without a bundle, names the command that builds it, and the pages answer 503 with the same headers', () => {
    const bundle = loadUiBundle(join(scratch, 'nothing-here'));
    expect(bundle).toEqual({ ok: false, problem: `${join(scratch, 'nothing-here', 'manifest.json')} is missing: build the pages with \`npm run build:ui\`` });
    const page = uiPage(bundle, { name: 'customer', basePath: '/_quotagate/dashboard', title: 'Your API usage' });
    for (const subPath of ['', '/assets/customer-AAAA1111.js']) {
      const answer = page.answer(subPath, undefined, false)!;
      expect(answer.status).toBe(503);
      expect(answer.body!.toString()).toContain('npm run build:ui');
      expect(answer.body!.toString()).not.toContain('<script');
      expect(header(answer, 'content-security-policy')).toBe(UI_CONTENT_SECURITY_POLICY);
      expect(header(answer, 'cache-control')).toBe('no-store');
    }
    expect(page.answer('/elsewhere', undefined, false)).toBeUndefined();
  });

  it('refuses a manifest naming a file that is missing or not a built asset name', () => {
    const missing = loadUiBundle(bundleDir('missing-file', MANIFEST, ['operator-CCCC3333.js']));
    expect(missing.ok).toBe(false);
    expect(!missing.ok && missing.problem).toMatch(/cannot be read .*operator-CCCC3333\.js.*npm run build:ui/);
    const traversal = loadUiBundle(bundleDir('bad-name', { ...MANIFEST, customer: { script: '../../etc/passwd', style: 'customer-BBBB2222.css' } }));
    expect(!traversal.ok && traversal.problem).toContain('manifest.json: customer.script is not a built script name');
  });

  it('is found at dist/ui of the checkout from src/, and of the image from dist/src/', () => {
    expect(uiAssetsDirectory('/repo/src/http/ui')).toBe('/repo/dist/ui');
    expect(uiAssetsDirectory('/app/dist/src/http/ui')).toBe('/app/dist/ui');
  });
});

describe('isDashboardRequest', () => {
  it.each([
    ['GET', '/_quotagate/dashboard', true],
    ['HEAD', '/_quotagate/dashboard', true],
    ['GET', '/_quotagate/dashboard/', true],
    ['GET', '/_quotagate/dashboard?from=email', true],
    ['GET', '/_quotagate/dashboard/assets/customer-AAAA1111.js', true],
    ['POST', '/_quotagate/dashboard', false],
    ['GET', '/_quotagate/dashboards', false],
    ['GET', '/_quotagate/usage', false],
  ])('%s %s: %s', (method, url, expected) => {
    expect(isDashboardRequest(method, url)).toBe(expected);
  });
});
