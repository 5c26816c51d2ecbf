import { request } from 'undici';
import { startRecordingUpstream, type RecordingUpstream } from './recording-upstream.js';
import { startTestGateway, testConfig, type TestGateway } from './test-gateway.js';

/**
 * A gateway for the pages: the embedded database (subjects, keys, the
 * ledger) and the memory store, an admin token, two plans with display
 * names and upgrade links, in front of a recording upstream. For the
 * browser tests and scripts/screenshots.ts.
 */

/** The admin token of {@link startDashboardGateway}'s gateway. */
export const DASHBOARD_ADMIN_TOKEN = 'dashboard-test-admin-token-5be1d7';

/** `pro`: 10 requests an hour (so 8 is 80 %), a searches quota covered by credits. */
export const DASHBOARD_PLANS = `  pro:
    display_name: Pro
    upgrade_url: https://example.com/pricing?from=pro
    limits: { hour: 10, day: 1000 }
    quotas:
      search: { month: 40 }
    credits: { covers: [search.month] }
  scale:
    display_name: Scale
    upgrade_url: https://example.com/pricing?from=scale
    limits: { hour: 2000, day: 20000 }
    quotas:
      search: { month: 5000 }
  small: { limits: { minute: 3, hour: 100 } }
  anonymous: { limits: { minute: 2 } }`;

const ROUTES = `
  - { name: search, path_prefix: /search, upstream: app, quota: search }
  - { name: api, path_prefix: /api, upstream: app }`;

export interface DashboardGateway {
  readonly gw: TestGateway;
  readonly upstream: RecordingUpstream;
  /** Calls the admin API with the token; the parsed JSON body (or undefined) and the status. */
  admin<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** Creates `subject` on `plan` with one key; returns the plain key. */
  customer(subject: string, plan: string): Promise<string>;
  /** Sends `GET path` through the proxy with `key`; the status and the problem code, if any. */
  send(path: string, key: string): Promise<{ status: number; code: string | undefined }>;
  close(): Promise<void>;
}

export async function startDashboardGateway(options: { flushIntervalMs?: number } = {}): Promise<DashboardGateway> {
  const upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
  const config = testConfig({
    upstreamOrigin: upstream.origin,
    routes: ROUTES,
    plans: DASHBOARD_PLANS,
    extra: `usage:\n  flush_interval_ms: ${options.flushIntervalMs ?? 200}\n`,
  });
  const gw = await startTestGateway(config, { database: true, adminToken: DASHBOARD_ADMIN_TOKEN });
  const admin = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await request(gw.adminUrl + path, {
      method: method as 'GET',
      headers: { authorization: `Bearer ${DASHBOARD_ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: (text === '' ? undefined : JSON.parse(text)) as T };
  };
  return {
    gw,
    upstream,
    admin,
    async customer(subject, plan) {
      const created = await admin('POST', '/admin/subjects', { id: subject, plan });
      if (created.status !== 201) throw new Error(`creating subject ${subject}: ${created.status}`);
      const key = await admin<{ key: string }>('POST', `/admin/subjects/${subject}/keys`, { name: 'default' });
      if (key.status !== 201) throw new Error(`creating a key for ${subject}: ${key.status}`);
      return key.body.key;
    },
    async send(path, key) {
      const res = await request(gw.proxyUrl + path, { headers: { 'x-api-key': key } });
      const text = await res.body.text();
      const code = res.statusCode >= 400 ? (JSON.parse(text) as { code?: string }).code : undefined;
      return { status: res.statusCode, code };
    },
    async close() {
      await gw.gateway.shutdown();
      await upstream.close();
    },
  };
}
