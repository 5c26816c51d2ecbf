import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type GatewayProcess, startGatewayProcess } from '../support/gateway-process.js';
import { within } from '../support/within.js';

/**
 * Safe configuration (issue 10 §5) as `quotagate serve` applies it: a weak
 * admin token on an exposed admin listener stops start-up before anything
 * listens; risky settings are logged as warnings and the gateway serves.
 */

const ROOT = resolve(import.meta.dirname, '../..');

const EXPOSED_ADMIN = `
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 0.0.0.0, port: 0 }
upstreams:
  app: { url: "http://127.0.0.1:9" }
routes:
  - { name: api, path_prefix: /, upstream: app }
plans:
  free: {}
admin:
  token_env: QG_TEST_ADMIN_TOKEN
`;

/** Each test starts `quotagate serve` (tsx compiles it first): seconds on a loaded machine. */
const PROCESS_TEST_TIMEOUT_MS = 60_000;

/** Runs `quotagate serve` on `yaml` with `env` added, and resolves with its exit code and output. */
async function serveUntilExit(yaml: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const file = join(mkdtempSync(join(tmpdir(), 'quotagate-safe-')), 'gateway.yaml');
  writeFileSync(file, yaml);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin.ts', 'serve', '--config', file], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    const code = await within(new Promise<number | null>((done) => child.on('exit', done)), 30_000, 'serve to exit');
    return { code, output };
  } finally {
    child.kill('SIGKILL');
  }
}

describe('quotagate serve: safe configuration', () => {
  let running: GatewayProcess | undefined;
  afterEach(() => {
    running?.child.kill('SIGKILL');
    running = undefined;
  });

  it.each([
    ['a token under 32 characters', 'x'.repeat(31), 'QG_TEST_ADMIN_TOKEN holds 31 characters, and the admin listener is bound to 0.0.0.0, beyond loopback, which needs at least 32'],
    ["the Kubernetes example's old placeholder", 'change-me-to-a-long-random-token', "QG_TEST_ADMIN_TOKEN holds a placeholder token from quotagate's examples"],
  ])('refuses to start with %s on an admin listener beyond loopback, naming the rule and not the token', async (_, token, message) => {
    const { code, output } = await serveUntilExit(EXPOSED_ADMIN, { QG_TEST_ADMIN_TOKEN: token });
    expect(code).toBe(1);
    expect(output).toContain(`: admin.token_env: ${message}`);
    expect(output).not.toContain('quotagate listening');
    expect(output).not.toContain(token);
  }, PROCESS_TEST_TIMEOUT_MS);

  it('logs each warning at start and serves', async () => {
    running = await startGatewayProcess(`
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
upstreams:
  app: { url: "http://127.0.0.1:9" }
proxy:
  trusted_proxies: [0.0.0.0/0]
routes:
  - { name: public, path_prefix: /, upstream: app, auth: none }
plans:
  anonymous: {}
admin:
  token_env: QG_TEST_ADMIN_TOKEN_UNSET_${randomBytes(4).toString('hex')}
`);
    const warnings = running
      .output()
      .split('\n')
      .filter((line) => line.includes('"level":40'))
      .map((line) => JSON.parse(line) as { path: string; msg: string });
    expect(warnings.map((w) => [w.path, w.msg])).toEqual([
      ['proxy.trusted_proxies[0]', '0.0.0.0/0 trusts every peer: any client can set X-Forwarded-For (and so its anonymous subject), X-Forwarded-Proto and X-Forwarded-Host'],
      ['routes[0].auth', 'route "public" uses auth: none, and plan "anonymous" has no windows: anonymous callers are unlimited'],
    ]);
    const health = await fetch(`${running.adminUrl}/healthz`);
    expect(health.status).toBe(200);
  }, PROCESS_TEST_TIMEOUT_MS);
});
