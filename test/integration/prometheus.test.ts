import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { type RunningGateway, startGateway } from '../../src/main.js';
import { unusedPort } from '../support/ports.js';
import { requireTool } from '../support/required-tool.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { TEST_KEY, TEST_KEY_HASH, UNKNOWN_KEY } from '../support/test-gateway.js';
import { eventually, within } from '../support/within.js';
import { encodeStreamFields } from '../../src/core/quota-events.js';
import { eventStreamKey } from '../../src/redis/keys.js';

/** What Prometheus logs (info) once it serves its API: the moment /-/ready answers 200. */
const PROMETHEUS_READY_LINE = 'Server is ready to receive web requests.';

/**
 * A real Prometheus (Debian's `prometheus` package; `npm test` installs it)
 * scrapes an in-process gateway's admin listener every second, with the
 * shipped config/alerts.yml loaded; the test asks Prometheus's HTTP API for
 * the series the traffic made. The exposition must pass `promtool check
 * metrics`, and every metric docs/operations.md lists must be exposed with
 * the documented type. Without prometheus or promtool the suite fails.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const REDIS_URL = 'redis://127.0.0.1:6379';
const SUBJECT = 'customer-prom-1';
const WEBHOOK_SECRET = `whsec_${Buffer.alloc(32, 0x33).toString('base64')}`;
/** In the webhook's URL: it must never reach a label. */
const WEBHOOK_TOKEN = 'hook-t0ken-9f2';

interface DocumentedMetric {
  readonly name: string;
  readonly type: string;
  readonly labels: readonly string[];
}

/** The rows of docs/operations.md's metrics table: | `name` | type | `label`, … | meaning |. */
function documentedMetrics(): DocumentedMetric[] {
  const doc = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| `(quotagate_[a-z0-9_]+)` \| (counter|gauge|histogram) \| ([^|]*) \|/gm)];
  return rows.map(([, name, type, labels]) => ({
    name: name!,
    type: type!,
    labels: [...labels!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!),
  }));
}

/** `# TYPE` of every metric family in a text exposition. */
function exposedTypes(exposition: string): Map<string, string> {
  return new Map([...exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => [name!, type!]));
}

function gatewayYaml(upstreamOrigin: string, keyPrefix: string, receiverOrigin: string): string {
  return `
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
store:
  type: redis
  redis: { url: "${REDIS_URL}", key_prefix: ${keyPrefix}, command_timeout_ms: 2000 }
upstreams:
  app: { url: ${upstreamOrigin} }
routes:
  - { name: api, path_prefix: /api, upstream: app }
auth:
  api_keys:
    keys:
      - { id: prom-key, hash: ${TEST_KEY_HASH}, subject: ${SUBJECT}, plan: small }
plans:
  small: { limits: { hour: 3, day: 100 } }
postgres:
  data_dir: "memory://"
events:
  webhooks:
    - { name: billing, url: "${receiverOrigin}/hooks?token=${WEBHOOK_TOKEN}", secret_env: QG_PROM_WEBHOOK_SECRET }
  delivery: { poll_interval_ms: 20 }
`;
}

interface PromVector {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

describe('a real Prometheus scraping the admin listener', () => {
  const keyPrefix = testKeyPrefix('prom');
  const workDir = mkdtempSync(join(tmpdir(), 'quotagate-prometheus-'));
  let upstream: RecordingUpstream;
  let receiver: RecordingUpstream;
  let gateway: RunningGateway;
  let prometheus: ChildProcess | undefined;
  let prometheusUrl = '';
  let prometheusLog = '';
  let exposition = '';
  let redis: Redis;

  async function query(promql: string): Promise<{ status: string; data: { resultType: string; result: PromVector[] }; error?: string }> {
    const res = await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query: promql })}`);
    return (await res.json()) as { status: string; data: { resultType: string; result: PromVector[] }; error?: string };
  }

  /** Polls `promql` until it returns a non-empty vector (Prometheus scrapes every second), at most 30 s. */
  async function vectorOf(promql: string): Promise<PromVector[]> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const answer = await query(promql);
      if (answer.status !== 'success') throw new Error(`${promql}: ${answer.error}`);
      if (answer.data.result.length > 0) return answer.data.result;
      if (Date.now() > deadline) throw new Error(`${promql}: no series after 30 s\n${prometheusLog.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  beforeAll(async () => {
    // Fail loudly: a missing Prometheus is a broken CI machine, not a reason to skip.
    for (const tool of ['prometheus', 'promtool']) requireTool(tool, ['--version'], 'prometheus');
    redis = new Redis(REDIS_URL);
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    receiver = await startRecordingUpstream({ reply: { status: 204 } });
    gateway = await startGateway(
      parseConfigText(gatewayYaml(upstream.origin, keyPrefix, receiver.origin), 'prometheus-test.yaml', { QG_PROM_WEBHOOK_SECRET: WEBHOOK_SECRET }),
      { logger: pino({ level: 'silent' }), processMetrics: true, webhookSecrets: [WEBHOOK_SECRET] },
    );

    // Traffic: 3 allowed, then denied by the hour window (the store, then the local deny cache), and auth failures.
    const get = (headers: Record<string, string> = {}) => fetch(`${gateway.proxyUrl}/api/items?secret-path=1`, { headers }).then((r) => r.status);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push(await get({ 'x-api-key': TEST_KEY }));
    statuses.push(await get({ 'x-api-key': UNKNOWN_KEY }), await get());
    expect(statuses).toEqual([200, 200, 200, 429, 429, 401, 401]);
    // A quota event, as lua/consume.lua writes it, delivered to the webhook receiver.
    const event = { id: 'evt_prom_1', type: 'quota.threshold' as const, timestampMs: Date.now(), data: { subject: 'prom-events', threshold: 80 } };
    await redis.xadd(eventStreamKey(keyPrefix), '*', ...encodeStreamFields(event));
    await eventually(() => receiver.requests.length === 1, 30_000, 'the webhook delivery');

    exposition = await (await fetch(`${gateway.adminUrl}/metrics`)).text();

    const port = await unusedPort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    const configFile = join(workDir, 'prometheus.yml');
    writeFileSync(
      configFile,
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: ["${join(ROOT, 'config/alerts.yml')}"]
scrape_configs:
  - job_name: quotagate
    static_configs: [{ targets: ["${new URL(gateway.adminUrl).host}"] }]
`,
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(workDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        // info: the line that says it is ready is an info line.
        '--log.level=info',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // Ready once it says so (the same moment /-/ready turns 200); its exit first is a failure.
    const ready = new Promise<void>((resolve, reject) => {
      const onOutput = (chunk: Buffer): void => {
        prometheusLog += chunk.toString();
        if (prometheusLog.includes(PROMETHEUS_READY_LINE)) resolve();
      };
      prometheus!.stdout!.on('data', onOutput);
      prometheus!.stderr!.on('data', onOutput);
      prometheus!.once('exit', (code) => reject(new Error(`prometheus exited (${code}):\n${prometheusLog}`)));
    });
    await within(ready, 30_000, 'prometheus to be ready').catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; its log:\n${prometheusLog}`);
    });
    expect((await fetch(`${prometheusUrl}/-/ready`)).status).toBe(200);
  }, 90_000);

  afterAll(async () => {
    if (prometheus !== undefined && prometheus.exitCode === null) {
      const exited = new Promise((r) => prometheus!.once('exit', r));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await gateway?.shutdown();
    await upstream?.close();
    await receiver?.close();
    if (redis !== undefined) {
      await deleteKeysWithPrefix(redis, keyPrefix);
      redis.disconnect();
    }
    rmSync(workDir, { recursive: true, force: true });
  });

  it('promtool check metrics accepts the exposition', () => {
    const result = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('exposes every metric docs/operations.md lists, with the documented type and labels', () => {
    const documented = documentedMetrics();
    expect(documented.length).toBeGreaterThan(20);
    const types = exposedTypes(exposition);
    for (const metric of documented) {
      expect(types.get(metric.name), `${metric.name} is documented but not exposed`).toBe(metric.type);
      const sampleName = metric.type === 'histogram' ? `${metric.name}_bucket` : metric.name;
      for (const line of exposition.split('\n').filter((l) => l.startsWith(`${sampleName}{`) || l.startsWith(`${sampleName} `))) {
        const labels = [...line.matchAll(/([a-z_]+)="/g)].map((m) => m[1]!).filter((l) => l !== 'le');
        expect(labels.sort(), `${line}: labels`).toEqual([...metric.labels].sort());
      }
    }
  });

  it('names every quotagate metric the gateway defines in docs/operations.md (not prom-client’s process defaults)', () => {
    const doc = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
    const documented = new Set([...doc.matchAll(/`(quotagate_[a-z0-9_]+)/g)].map((m) => m[1]!));
    const own = [...exposedTypes(exposition).keys()].filter((name) => !/^quotagate_(process|nodejs)_/.test(name));
    expect(own.filter((name) => !documented.has(name))).toEqual([]);
  });

  it('puts no key, subject or raw path in any label value', () => {
    for (const secret of [TEST_KEY, UNKNOWN_KEY, SUBJECT, 'secret-path', '/api/items', WEBHOOK_TOKEN, receiver.origin, 'prom-events']) {
      expect(exposition).not.toContain(secret);
    }
  });

  it('is scraped: up is 1 and the traffic’s requests, decisions and auth failures are in Prometheus with their labels', async () => {
    expect((await vectorOf('up{job="quotagate"}'))[0]!.value[1]).toBe('1');

    const requests = await vectorOf('quotagate_requests_total{job="quotagate"}');
    const byOutcome = Object.fromEntries(requests.map((s) => [`${s.metric.route}/${s.metric.plan}/${s.metric.outcome}`, s.value[1]]));
    expect(byOutcome).toMatchObject({ 'api/small/forwarded': '3', 'api/small/rate_limited': '2' });

    const decisions = await vectorOf('quotagate_decisions_total');
    const byReason = Object.fromEntries(decisions.map((s) => [`${s.metric.outcome}/${s.metric.reason}`, s.value[1]]));
    expect(byReason).toEqual({ 'allowed/allowed': '3', 'denied/window': '1', 'denied/local-deny': '1' });

    const failures = await vectorOf('quotagate_auth_failures_total');
    expect(Object.fromEntries(failures.map((s) => [s.metric.reason, s.value[1]]))).toEqual({ unknown: '1', missing: '1' });

    const localDeny = await vectorOf('quotagate_local_deny_cache_lookups_total');
    expect(Object.fromEntries(localDeny.map((s) => [s.metric.result, s.value[1]]))).toEqual({ hit: '1', miss: '4' });
  }, 60_000);

  it('has latency histograms Prometheus can take quantiles of, store health and process metrics', async () => {
    const [p99] = await vectorOf('histogram_quantile(0.99, sum by (le) (quotagate_request_duration_seconds_bucket))');
    expect(Number(p99!.value[1])).toBeGreaterThan(0);
    const [storeCalls] = await vectorOf('quotagate_store_duration_seconds_count{store="redis"}');
    expect(storeCalls!.value[1]).toBe('4');
    const [upstreamCalls] = await vectorOf('quotagate_upstream_duration_seconds_count{route="api"}');
    expect(upstreamCalls!.value[1]).toBe('3');
    const [circuit] = await vectorOf('quotagate_store_circuit_state{store="redis"}');
    expect(circuit!.value[1]).toBe('0');
    const [inFlight] = await vectorOf('quotagate_requests_in_flight');
    expect(inFlight!.value[1]).toBe('0');
    const [memory] = await vectorOf('quotagate_process_resident_memory_bytes');
    expect(Number(memory!.value[1])).toBeGreaterThan(0);
  }, 60_000);

  it('has the webhook delivery counters and queue gauges, by endpoint name', async () => {
    const deliveries = await vectorOf('quotagate_webhook_deliveries_total{job="quotagate"}');
    expect(Object.fromEntries(deliveries.map((s) => [`${s.metric.endpoint}/${s.metric.outcome}`, s.value[1]]))).toEqual({
      'billing/delivered': '1',
      'billing/failed_attempt': '0',
      'billing/dead_lettered': '0',
    });
    const [attempts] = await vectorOf('quotagate_webhook_delivery_duration_seconds_count{endpoint="billing"}');
    expect(attempts!.value[1]).toBe('1');
    for (const gauge of ['quotagate_event_outbox_depth', 'quotagate_webhook_deliveries_due', 'quotagate_webhook_deliveries_pending', 'quotagate_webhook_dead_letters']) {
      expect((await vectorOf(gauge))[0]!.value[1], gauge).toBe('0');
    }
  }, 60_000);

  it('loads config/alerts.yml: every rule healthy, none firing on a healthy gateway', async () => {
    await vectorOf('up{job="quotagate"}');
    const deadline = Date.now() + 30_000;
    let rules: { health: string; name: string; lastError?: string; state?: string }[] = [];
    for (;;) {
      const answer = (await (await fetch(`${prometheusUrl}/api/v1/rules`)).json()) as {
        data: { groups: { rules: { health: string; name: string; lastError?: string; state?: string }[] }[] };
      };
      rules = answer.data.groups.flatMap((g) => g.rules);
      if (rules.length > 0 && rules.every((r) => r.health === 'ok')) break;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(rules.map((r) => r.name)).toEqual(
      expect.arrayContaining([
        'QuotagateStoreDown',
        'QuotagateFailOpen',
        'QuotagateDenialSpike',
        'QuotagateLedgerFlushFailing',
        'QuotagateUpstreamErrors',
        'QuotagateWebhookBacklog',
        'QuotagateWebhookFailing',
        'QuotagateWebhookDeadLetters',
      ]),
    );
    expect(rules.filter((r) => r.health !== 'ok')).toEqual([]);
    expect(rules.filter((r) => r.state === 'firing').map((r) => r.name)).toEqual([]);
  }, 60_000);

  it('config/prometheus.yml and config/alerts.yml pass promtool', () => {
    execFileSync('promtool', ['check', 'rules', join(ROOT, 'config/alerts.yml')], { stdio: 'pipe' });
    execFileSync('promtool', ['check', 'config', join(ROOT, 'config/prometheus.yml')], { stdio: 'pipe' });
  });

  it('every Grafana dashboard query is valid PromQL on metrics the gateway exposes', async () => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'config/grafana-dashboard.json'), 'utf8')) as {
      panels: { type: string; title: string; targets?: { expr: string }[] }[];
    };
    const exposed = new Set(exposedTypes(exposition).keys());
    const exprs = dashboard.panels.filter((p) => p.type !== 'row').flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
    expect(exprs.length).toBeGreaterThan(10);
    for (const { title, expr } of exprs) {
      for (const [name] of expr.matchAll(/quotagate_[a-z0-9_]+/g)) {
        const family = name.replace(/_(bucket|sum|count)$/, '');
        expect(exposed.has(name) || exposed.has(family), `${title}: ${name} is not exposed`).toBe(true);
      }
      const runnable = expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '5m').replaceAll('$__interval', '15s');
      const answer = await query(runnable);
      expect(answer.status, `${title}: ${expr}: ${answer.error}`).toBe('success');
    }
  });
});
