/**
 * `npm run demo`: the demo upstream on 127.0.0.1:9000 and quotagate in front
 * of it on the shipped gateway.yaml (memory store, no Redis or PostgreSQL).
 * Ctrl-C drains the gateway and stops both.
 */
import { pino } from 'pino';
import { loadConfigFile } from '../src/config/load.js';
import { startGateway } from '../src/main.js';
import { waitForShutdownSignal } from './process.js';
import { startBenchUpstream } from './upstream.js';

const DEMO_KEY = 'qg_gyHv9AT3WonldYsJ8ffUI9_0p4rsE';

async function runDemo(): Promise<void> {
  const configPath = process.env.QUOTAGATE_CONFIG ?? 'gateway.yaml';
  const config = await loadConfigFile(configPath, process.env);
  const upstream = await startBenchUpstream({ port: Number(process.env.DEMO_UPSTREAM_PORT ?? 9000) });
  const logger = pino({ level: config.logging.level, base: { service: 'quotagate' } });
  const gateway = await startGateway(config, { logger });
  const proxy = gateway.proxyUrl.replace('0.0.0.0', '127.0.0.1');
  process.stdout.write(
    [
      '',
      `demo upstream  ${upstream.url}`,
      `quotagate      ${proxy}   (admin ${gateway.adminUrl}/metrics)`,
      '',
      'Try it (the demo plan allows 5 requests a minute):',
      `  curl -i -H 'X-API-Key: ${DEMO_KEY}' ${proxy}/api/hello`,
      `  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code}\\n' -H 'X-API-Key: ${DEMO_KEY}' ${proxy}/api/hello; done`,
      '',
    ].join('\n') + '\n',
  );
  await waitForShutdownSignal();
  await gateway.shutdown();
  await upstream.close();
}

runDemo().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
