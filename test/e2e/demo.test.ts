/**
 * `npm run demo` (bench/demo.ts) as a process of its own, on the shipped
 * gateway.yaml and its embedded database: it must run the gateway exactly
 * as `quotagate serve` does (the admin API with $QUOTAGATE_ADMIN_TOKEN, POST
 * /admin/reload, SIGHUP, SIGTERM), with the demo upstream beside it.
 *
 * It runs as `node --import tsx bench/demo.ts` (what `npm run demo` runs) in
 * a working directory of its own, so that its embedded ./data is not a
 * checkout's, on free ports (0) through the variables gateway.yaml reads.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPOSITORY_ROOT, type RunningCommand, startCommand, tsxNodeArgs } from '../support/command-process.js';
import { eventually, within } from '../support/within.js';

const TOKEN = 'demo-test-admin-token-9d2e';
const DEMO_KEY = 'qg_gyHv9AT3WonldYsJ8ffUI9_0p4rsE';
const BANNER = 'Try it (the demo plan allows 5 requests a minute):';

const scratch = mkdtempSync(join(tmpdir(), 'quotagate-demo-'));
const configPath = join(scratch, 'gateway.yaml');
let demo: RunningCommand;
let proxyUrl: string;
let adminUrl: string;
let upstreamUrl: string;

/** The URL after `label` on its banner line. */
function bannerUrl(label: string): string {
  const match = new RegExp(`^${label} +(http://\\S+)`, 'm').exec(demo.output());
  expect(match, `a "${label}" line in:\n${demo.output()}`).not.toBeNull();
  return match![1]!;
}

const admin = (path: string, init: RequestInit = {}, token: string | null = TOKEN) =>
  fetch(`${adminUrl}${path}`, {
    ...init,
    headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
  });

const demoPolicy = async (): Promise<string | null> =>
  (await fetch(`${proxyUrl}/api/hello`, { headers: { 'x-api-key': DEMO_KEY } })).headers.get('ratelimit-policy');

beforeAll(async () => {
  copyFileSync(join(REPOSITORY_ROOT, 'gateway.yaml'), configPath);
  demo = await startCommand(process.execPath, tsxNodeArgs('bench/demo.ts'), BANNER, {
    cwd: scratch,
    env: {
      QUOTAGATE_CONFIG: configPath,
      QUOTAGATE_ADMIN_TOKEN: TOKEN,
      QUOTAGATE_HOST: '127.0.0.1',
      QUOTAGATE_PORT: '0',
      QUOTAGATE_ADMIN_PORT: '0',
      DEMO_UPSTREAM_PORT: '0',
      UPSTREAM_URL: undefined,
    },
    timeoutMs: 90_000,
  });
  upstreamUrl = bannerUrl('demo upstream');
  proxyUrl = bannerUrl('quotagate');
  adminUrl = /\(admin (http:\/\/[^:]+:\d+)/.exec(demo.output())![1]!;
}, 100_000);

afterAll(async () => {
  if (demo !== undefined && demo.child.exitCode === null) {
    demo.child.kill('SIGKILL');
    await demo.exited;
  }
  rmSync(scratch, { recursive: true, force: true });
});

describe('npm run demo', () => {
  it('logs "database ready" and "quotagate listening" before its "Try it" banner (the banner came first)', () => {
    const output = demo.output();
    const banner = output.indexOf(BANNER);
    expect(output.indexOf('"msg":"database ready"')).toBeGreaterThan(-1);
    expect(output.indexOf('"msg":"database ready"')).toBeLessThan(banner);
    expect(output.indexOf('"msg":"quotagate listening"')).toBeLessThan(banner);
  });

  it('forwards the demo key to the demo upstream it started, with the demo plan', async () => {
    const res = await fetch(`${proxyUrl}/api/hello`, { headers: { 'x-api-key': DEMO_KEY } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, service: 'quotagate-bench-upstream' });
    expect(res.headers.get('ratelimit-policy')).toContain('"minute";q=5;w=60');
    expect((await fetch(`${upstreamUrl}/direct`)).status).toBe(200);
  });

  it('serves the admin API with $QUOTAGATE_ADMIN_TOKEN (it answered 404 admin_disabled), on its embedded database', async () => {
    expect((await admin('/admin/subjects', {}, null)).status).toBe(401);
    const created = await admin('/admin/subjects', { method: 'POST', body: JSON.stringify({ id: 'demo-acme', plan: 'pro' }) });
    expect(created.status).toBe(201);
    expect(((await (await admin('/admin/subjects/demo-acme')).json()) as { plan: string }).plan).toBe('pro');
  });

  it('reloads the edited file on POST /admin/reload, and again on SIGHUP', async () => {
    const shipped = readFileSync(configPath, 'utf8');
    const withMinute = (n: number) => shipped.replace('demo:\n    limits: { minute: 5,', `demo:\n    limits: { minute: ${n},`);
    expect(withMinute(7)).not.toBe(shipped);

    writeFileSync(configPath, withMinute(7));
    const reloaded = await admin('/admin/reload', { method: 'POST' });
    expect(reloaded.status).toBe(200);
    expect(await reloaded.json()).toEqual({ status: 'reloaded', routes: 2, plans: 6, upstreams: 1 });
    expect(await demoPolicy()).toContain('"minute";q=7;w=60');

    writeFileSync(configPath, withMinute(9));
    const logged = demo.output().split('"msg":"config reloaded"').length;
    demo.child.kill('SIGHUP');
    await eventually(() => demo.output().split('"msg":"config reloaded"').length > logged, 20_000, 'the SIGHUP reload log line');
    expect(demo.output()).toContain('"trigger":"SIGHUP"');
    expect(await demoPolicy()).toContain('"minute";q=9;w=60');
  });

  it('drains and exits 0 on SIGTERM, closing the upstream too', async () => {
    demo.child.kill('SIGTERM');
    expect(await within(demo.exited, 30_000, 'the demo to exit')).toBe(0);
    expect(demo.output()).toContain('"msg":"stopped"');
    await expect(fetch(`${upstreamUrl}/direct`)).rejects.toThrow();
  });
});
