/**
 * `npm run demo`: the demo upstream on 127.0.0.1:9000 and quotagate in front
 * of it, run exactly as `quotagate serve` runs it (the shipped gateway.yaml
 * or $QUOTAGATE_CONFIG, its embedded database, the admin API when
 * $QUOTAGATE_ADMIN_TOKEN is set, reload on SIGHUP and POST /admin/reload,
 * drain on SIGTERM / Ctrl-C). The only addition is the upstream beside it.
 *
 * Ports: the upstream on $DEMO_UPSTREAM_PORT (default 9000; the gateway is
 * pointed at it through $UPSTREAM_URL unless that is set), the proxy on
 * $QUOTAGATE_PORT (8080) and the admin listener on $QUOTAGATE_ADMIN_PORT
 * (8081), as gateway.yaml reads them. 0 picks free ports.
 */
import { type RunningGateway, runServe } from '../src/main.js';
import { startBenchUpstream } from './upstream.js';

const DEMO_KEY = 'qg_gyHv9AT3WonldYsJ8ffUI9_0p4rsE';

/** What to try, printed once the gateway listens (after its start-up log). */
function banner(upstreamUrl: string, gateway: RunningGateway): string {
  const proxy = gateway.proxyUrl.replace('0.0.0.0', '127.0.0.1');
  const admin = gateway.adminUrl;
  const adminToken = process.env.QUOTAGATE_ADMIN_TOKEN;
  return [
    '',
    `demo upstream  ${upstreamUrl}`,
    `quotagate      ${proxy}   (admin ${admin}: /healthz, /readyz, /metrics)`,
    '',
    'Try it (the demo plan allows 5 requests a minute):',
    `  curl -i -H 'X-API-Key: ${DEMO_KEY}' ${proxy}/api/hello`,
    `  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code}\\n' -H 'X-API-Key: ${DEMO_KEY}' ${proxy}/api/hello; done`,
    `  open ${proxy}/_quotagate/dashboard and sign in with the demo key: its plan, usage bars and history`,
    ...(adminToken === undefined || adminToken === ''
      ? ['', 'The admin API is off: set QUOTAGATE_ADMIN_TOKEN (e.g. $(openssl rand -hex 24)) to turn it on.']
      : [
          '',
          'Admin API (token from QUOTAGATE_ADMIN_TOKEN):',
          `  curl -H "Authorization: Bearer $QUOTAGATE_ADMIN_TOKEN" ${admin}/admin/subjects`,
          `  curl -H "Authorization: Bearer $QUOTAGATE_ADMIN_TOKEN" -X POST ${admin}/admin/reload`,
          `  open ${admin}/admin/ui and sign in with the token: the operator page`,
        ]),
    '',
  ].join('\n');
}

async function runDemo(): Promise<number> {
  const upstream = await startBenchUpstream({ port: Number(process.env.DEMO_UPSTREAM_PORT ?? 9000) });
  // gateway.yaml reads ${UPSTREAM_URL:-http://127.0.0.1:9000}: point it at the port actually taken.
  process.env.UPSTREAM_URL ??= upstream.url;
  try {
    // No arguments: the config is $QUOTAGATE_CONFIG, else ./gateway.yaml, as for `quotagate serve`.
    return await runServe([], {
      onListening: (gateway, print) => print(`${banner(upstream.url, gateway)}\n`),
    });
  } finally {
    await upstream.close();
  }
}

// Exit as `quotagate` does (main.ts): with the code, once everything is closed.
runDemo().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
