import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCommand } from './command-process.js';
import { createTestDatabase } from './postgres-test-database.js';
import { within } from './within.js';

const START_TIMEOUT_MS = 45_000;

/** `quotagate serve` running as a process of its own. */
export interface GatewayProcess {
  readonly child: ChildProcess;
  /** `http://host:port` of its proxy listener, from its start-up log line. */
  readonly proxyUrl: string;
  /** `http://host:port` of its admin listener. */
  readonly adminUrl: string;
  /** The config file it was started with (rewrite it and send SIGHUP to reload). */
  readonly configPath: string;
  /** Everything it wrote to stdout and stderr so far. */
  readonly output: () => string;
  /** Resolves with its exit code. */
  readonly exited: Promise<number | null>;
}

/**
 * Starts `quotagate serve --config <file>` (via tsx) with `configYaml` written
 * to a temp file, and resolves once it logs that it listens (within 45 s: a config's own embedded database takes seconds to open on a busy machine).
 * `env` is added to the process's environment (a webhook's secret). The caller kills it (`child.kill()`).
 */
export async function startGatewayProcess(configYaml: string, options: { readonly env?: Readonly<Record<string, string>> } = {}): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'quotagate-process-'));
  const configPath = join(dir, 'gateway.yaml');
  // A config that names no database gets a throwaway one on the test server:
  // the embedded default (./data) would be shared by every process, and it
  // allows one process and takes seconds to start.
  const database = /^postgres:/m.test(configYaml) ? undefined : await createTestDatabase();
  const yaml = database === undefined ? configYaml : `${configYaml}\npostgres:\n  url: "${database.url}"\n`;
  writeFileSync(configPath, yaml);
  const { child, output, exited } = await startCommand(
    process.execPath,
    ['--import', 'tsx', 'src/bin.ts', 'serve', '--config', configPath],
    'quotagate listening',
    { timeoutMs: START_TIMEOUT_MS, ...(options.env === undefined ? {} : { env: options.env }) },
  ).catch(async (error: unknown) => {
    await database?.drop().catch(() => undefined);
    throw error;
  });
  void exited.then(() => database?.drop().catch(() => undefined));
  const line = output().split('\n').find((l) => l.includes('quotagate listening'))!;
  const { proxy, admin } = JSON.parse(line) as { proxy: string; admin: string };
  return { child, proxyUrl: proxy, adminUrl: admin, configPath, output, exited };
}

/** Sends `count` GETs of `/x` with `apiKey`, one after another (each within 5 s); resolves to their statuses. */
export async function sendWithKey(gateway: GatewayProcess, apiKey: string, count: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) {
    const response = await within(fetch(`${gateway.proxyUrl}/x`, { headers: { 'x-api-key': apiKey } }), 5_000, 'a proxied request');
    await response.arrayBuffer();
    statuses.push(response.status);
  }
  return statuses;
}
