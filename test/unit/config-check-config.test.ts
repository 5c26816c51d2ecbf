import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCheckConfig } from '../../src/cli/check-config.js';
import type { Env } from '../../src/config/interpolate.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/config/${name}`, import.meta.url));

/** Runs check-config with captured output. */
async function check(argv: readonly string[], env: Env = {}): Promise<{ code: number; stdout: string[]; stderr: string[] }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runCheckConfig(argv, { env, stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line) });
  return { code, stdout, stderr };
}

const TWO_KEYS = `
upstreams:
  demo:
    url: \${UPSTREAM_URL}
routes:
  - name: api
    path_prefix: /api
    upstream: demo
plans:
  free: {}
auth:
  api_keys:
    keys:
      - hash: ${'a'.repeat(64)}
        subject: acme
        plan: free
      - hash: ${'b'.repeat(64)}
        subject: globex
        plan: free
`;

describe('runCheckConfig', () => {
  it('prints a summary on stdout and returns 0 for a valid file', async () => {
    const file = fixture('valid-minimal.yaml');
    expect(await check([file])).toEqual({ code: 0, stdout: [`${file}: ok (1 route, 1 plan, 0 keys)`], stderr: [] });
  });

  it('counts routes, plans and keys, interpolating from the given env', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'quotagate-check-')), 'gateway.yaml');
    writeFileSync(file, TWO_KEYS);
    expect(await check([file], { UPSTREAM_URL: 'http://127.0.0.1:3000' })).toEqual({
      code: 0,
      stdout: [`${file}: ok (1 route, 1 plan, 2 keys)`],
      stderr: [],
    });
  });

  it('prints every problem on stderr and returns 1 for an invalid file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'quotagate-check-')), 'gateway.yaml');
    writeFileSync(file, `${TWO_KEYS}colour: blue\nsize: 3\n`);
    expect(await check([file], { UPSTREAM_URL: 'http://127.0.0.1:3000' })).toEqual({
      code: 1,
      stdout: [],
      stderr: [`${file}: colour: unknown key`, `${file}: size: unknown key`],
    });
  });

  it('prints warnings on stderr, counts them in the summary and still returns 0', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'quotagate-check-')), 'gateway.yaml');
    writeFileSync(file, `${TWO_KEYS}proxy:\n  trusted_proxies: ["::/0"]\n`);
    expect(await check([file], { UPSTREAM_URL: 'http://127.0.0.1:3000' })).toEqual({
      code: 0,
      stdout: [`${file}: ok (1 route, 1 plan, 2 keys; 1 warning)`],
      stderr: [
        `${file}: proxy.trusted_proxies[0]: warning: ::/0 trusts every peer: any client can set X-Forwarded-For (and so its anonymous subject), X-Forwarded-Proto and X-Forwarded-Host`,
      ],
    });
  });

  it('refuses a weak admin token from its environment when the admin listener is exposed, without printing it', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'quotagate-check-')), 'gateway.yaml');
    writeFileSync(file, `${TWO_KEYS}listeners:\n  admin: { host: 0.0.0.0 }\nadmin:\n  token_env: ADMIN_TOKEN\n`);
    const env = { UPSTREAM_URL: 'http://127.0.0.1:3000' };
    expect(await check([file], { ...env, ADMIN_TOKEN: 'hunter2hunter2' })).toEqual({
      code: 1,
      stdout: [],
      stderr: [
        `${file}: admin.token_env: ADMIN_TOKEN holds 14 characters, and the admin listener is bound to 0.0.0.0, beyond loopback, which needs at least 32; set a random one (e.g. openssl rand -hex 32)`,
      ],
    });
    expect((await check([file], { ...env, ADMIN_TOKEN: 'f'.repeat(64) })).code).toBe(0);
  });

  it('returns 1 when an environment variable is missing', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'quotagate-check-')), 'gateway.yaml');
    writeFileSync(file, TWO_KEYS);
    expect((await check([file])).stderr).toEqual([`${file}: upstreams.demo.url: environment variable "UPSTREAM_URL" is not set`]);
  });

  it('falls back to QUOTAGATE_CONFIG when no file is given', async () => {
    const file = fixture('bad-port.yaml');
    expect(await check([], { QUOTAGATE_CONFIG: file })).toEqual({
      code: 1,
      stdout: [],
      stderr: [`${file}: listeners.proxy.port: must be at most 65535`],
    });
  });

  it('prefers the argument over QUOTAGATE_CONFIG', async () => {
    const file = fixture('valid-minimal.yaml');
    expect((await check([file], { QUOTAGATE_CONFIG: fixture('bad-port.yaml') })).code).toBe(0);
  });

  it('falls back to gateway.yaml in the working directory', async () => {
    const result = await check([], {});
    // Valid, invalid or absent, the first line is labelled with the default name.
    expect(result.stdout[0] ?? result.stderr[0]).toMatch(/^gateway\.yaml: /);
  });

  it('reports an unreadable file and returns 1', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'quotagate-check-')), 'absent.yaml');
    expect(await check([file])).toEqual({ code: 1, stdout: [], stderr: [`${file}: cannot read: no such file`] });
  });

  it('returns 2 with a usage line for extra arguments or options', async () => {
    for (const argv of [['a.yaml', 'b.yaml'], ['--strict']]) {
      const result = await check(argv);
      expect(result.code).toBe(2);
      expect(result.stderr).toEqual([expect.stringMatching(/^usage: quotagate check-config/)]);
    }
  });
});
