import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { runCheckConfig } from '../../src/cli/check-config.js';
import { type GatewayProcess, startGatewayProcess } from '../support/gateway-process.js';
import { type RecordingUpstream, startRecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, type TestGateway, testConfig } from '../support/test-gateway.js';
import { eventually, within } from '../support/within.js';

const ADMIN_TOKEN = 'reload-test-admin-token';
const ROUTES = '  - { name: api, path_prefix: /, upstream: app, auth: none }';
const PLANS = '  small: { limits: { minute: 3 } }\n  anonymous: { limits: { minute: 1000000 } }';

/** A config whose one route goes to `origin` (every caller anonymous, effectively unlimited). */
function configFor(origin: string, plans = PLANS): string {
  return testConfig({ upstreamOrigin: origin, routes: ROUTES, plans });
}

function tempConfigFile(yaml: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'quotagate-reload-')), 'gateway.yaml');
  writeFileSync(path, yaml);
  return path;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await request(url);
  return { status: res.statusCode, body: await res.body.text() };
}

async function postReload(adminUrl: string, token = ADMIN_TOKEN): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`${adminUrl}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

async function metricsText(adminUrl: string): Promise<string> {
  return (await request(`${adminUrl}/metrics`)).body.text();
}

/** The lines `quotagate check-config <path>` prints on stderr. */
async function checkConfigLines(path: string): Promise<string[]> {
  const lines: string[] = [];
  await runCheckConfig([path], { env: {}, stdout: () => undefined, stderr: (line) => lines.push(line) });
  return lines;
}

describe('hot reload (in-process gateway)', () => {
  let upstreamA: RecordingUpstream | undefined;
  let upstreamB: RecordingUpstream | undefined;
  let served: TestGateway | undefined;

  afterEach(async () => {
    await served?.gateway.shutdown();
    await Promise.all([upstreamA?.close(), upstreamB?.close()]);
    served = upstreamA = upstreamB = undefined;
  });

  async function start(logLines?: string[]): Promise<{ path: string; a: RecordingUpstream; b: RecordingUpstream; gw: TestGateway }> {
    upstreamA = await startRecordingUpstream({ reply: { body: 'A' } });
    upstreamB = await startRecordingUpstream({ reply: { body: 'B' } });
    const yaml = configFor(upstreamA.origin);
    const path = tempConfigFile(yaml);
    served = await startTestGateway(yaml, { configFile: path, adminToken: ADMIN_TOKEN, ...(logLines === undefined ? {} : { logLines }) });
    return { path, a: upstreamA, b: upstreamB, gw: served };
  }

  it('swaps the upstream under load, six times, and every request gets the old or the new answer', async () => {
    const { path, a, b, gw } = await start();
    const answers: { status: number; body: string }[] = [];
    const failures: unknown[] = [];
    let running = true;
    const worker = async (): Promise<void> => {
      while (running) {
        try {
          answers.push(await get(`${gw.proxyUrl}/work`));
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const workers = Array.from({ length: 8 }, () => worker());
    // A slow request in flight on A's pool across every swap.
    a.configure({ reply: (record) => (record.url === '/slow' ? { body: 'A', delayHeadersMs: 600 } : { body: 'A' }) });
    const slow = get(`${gw.proxyUrl}/slow`);
    let expected = 'A';
    for (let round = 1; round <= 6; round++) {
      await eventually(() => answers.length >= round * 50, 10_000, `traffic before reload ${round}`);
      expected = round % 2 === 1 ? 'B' : 'A';
      writeFileSync(path, configFor(expected === 'B' ? b.origin : a.origin));
      const result = await gw.gateway.reload('test');
      expect(result).toEqual({ ok: true, routes: 1, plans: 2, upstreams: 1 });
      // Once reload resolves, every new request goes to the new upstream.
      expect((await get(`${gw.proxyUrl}/after-${round}`)).body).toBe(expected);
    }
    running = false;
    await Promise.all(workers);
    expect(await within(slow, 5000, 'the slow request')).toEqual({ status: 200, body: 'A' });
    expect(failures).toEqual([]);
    expect(answers.length).toBeGreaterThan(300);
    expect(answers.filter((answer) => answer.status !== 200 || (answer.body !== 'A' && answer.body !== 'B'))).toEqual([]);
    expect(new Set(answers.map((answer) => answer.body))).toEqual(new Set(['A', 'B']));
    expect(await metricsText(gw.adminUrl)).toContain('quotagate_config_reloads_total{result="ok"} 6');
  });

  it('applies a changed plan limit on POST /admin/reload', async () => {
    const { path, gw } = await start();
    writeFileSync(path, configFor(upstreamA!.origin, '  small: { limits: { minute: 3 } }\n  anonymous: { limits: { minute: 2 } }'));
    const reloaded = await postReload(gw.adminUrl);
    expect(reloaded).toEqual({ status: 200, body: { status: 'reloaded', routes: 1, plans: 2, upstreams: 1 } });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await get(`${gw.proxyUrl}/x`)).status);
    expect(statuses).toEqual([200, 200, 429]);
    expect(await metricsText(gw.adminUrl)).toMatch(/quotagate_config_last_reload_success_timestamp_seconds \d{10}/);
  });

  it('rejects an invalid file with the check-config lines, keeps serving the old config, counts and logs it', async () => {
    const logLines: string[] = [];
    const { path, gw } = await start(logLines);
    writeFileSync(path, configFor(upstreamB!.origin, '  small: { limits: { minute: 3 } }\n  anonymous: { limits: { minute: 0 } }'));
    const expectedLines = await checkConfigLines(path);
    expect(expectedLines).toContain(`${path}: plans.anonymous.limits.minute: must be at least 1`);

    const rejected = await postReload(gw.adminUrl);
    expect(rejected).toEqual({ status: 422, body: { status: 'rejected', reason: 'invalid', problems: expectedLines } });
    expect(await get(`${gw.proxyUrl}/still`)).toEqual({ status: 200, body: 'A' });
    const metrics = await metricsText(gw.adminUrl);
    expect(metrics).toContain('quotagate_config_reloads_total{result="rejected"} 1');
    expect(metrics).toContain('quotagate_config_last_reload_success_timestamp_seconds 0');
    const logged = logLines.map((line) => JSON.parse(line) as { msg: string; problems?: string[]; reason?: string });
    const line = logged.find((entry) => entry.msg.startsWith('config reload rejected'));
    expect(line).toMatchObject({ reason: 'invalid', problems: expectedLines });
  });

  it('refuses a reload that changes store:, naming the section, and keeps the old config', async () => {
    const { path, gw } = await start();
    writeFileSync(path, `${configFor(upstreamB!.origin)}\nstore:\n  type: memory\n  local_deny_cache: { max_entries: 5 }\n`);
    const refused = await postReload(gw.adminUrl);
    expect(refused.status).toBe(409);
    expect(refused.body).toEqual({
      status: 'rejected',
      reason: 'needs_restart',
      problems: ['store: changed, and cannot be applied without a restart; nothing was reloaded'],
    });
    expect(await get(`${gw.proxyUrl}/still`)).toEqual({ status: 200, body: 'A' });
    expect(await metricsText(gw.adminUrl)).toContain('quotagate_config_reloads_total{result="rejected"} 1');
  });

  it('answers POST /admin/reload only with the admin token', async () => {
    const { gw } = await start();
    const res = await request(`${gw.adminUrl}/admin/reload`, { method: 'POST' });
    expect(res.statusCode).toBe(401);
    expect(((await res.body.json()) as { code: string }).code).toBe('admin_unauthorized');
    expect((await postReload(gw.adminUrl, 'wrong-token')).status).toBe(401);
  });
});

describe('SIGHUP', () => {
  let upstreamA: RecordingUpstream | undefined;
  let upstreamB: RecordingUpstream | undefined;
  let served: GatewayProcess | undefined;

  afterEach(async () => {
    served?.child.kill('SIGKILL');
    await Promise.all([upstreamA?.close(), upstreamB?.close()]);
    served = upstreamA = upstreamB = undefined;
  });

  it('makes a running gateway process pick up the changed file, and keeps it on an invalid one', async () => {
    upstreamA = await startRecordingUpstream({ reply: { body: 'A' } });
    upstreamB = await startRecordingUpstream({ reply: { body: 'B' } });
    served = await startGatewayProcess(configFor(upstreamA.origin));
    expect(await get(`${served.proxyUrl}/x`)).toEqual({ status: 200, body: 'A' });

    writeFileSync(served.configPath, readFileSync(served.configPath, 'utf8').replace(upstreamA.origin, upstreamB.origin));
    served.child.kill('SIGHUP');
    await eventually(() => served!.output().includes('"config reloaded"'), 10_000, 'the reload log line');
    expect(await get(`${served.proxyUrl}/x`)).toEqual({ status: 200, body: 'B' });

    writeFileSync(served.configPath, readFileSync(served.configPath, 'utf8').replace('minute: 1000000', 'minute: -1'));
    served.child.kill('SIGHUP');
    await eventually(() => served!.output().includes('config reload rejected'), 10_000, 'the rejection log line');
    expect(served.output()).toContain('plans.anonymous.limits.minute: must be at least 1');
    expect(await get(`${served.proxyUrl}/x`)).toEqual({ status: 200, body: 'B' });
    expect(served.child.exitCode).toBeNull();
  });
});
