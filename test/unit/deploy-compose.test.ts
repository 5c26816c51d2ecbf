import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfigFile } from '../../src/config/load.js';
import { requireTool } from '../support/required-tool.js';

/**
 * docker-compose.yml: checked by the real compose client (`docker compose
 * config` needs no engine; `npm test` installs Debian's docker-compose), and by
 * reading the file for what the client does not check: that every file it
 * mounts exists, that the gateway's config validates with the environment
 * compose gives it, and that the services point at each other's ports.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const COMPOSE_FILE = resolve(ROOT, 'docker-compose.yml');

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
}
const compose = parse(readFileSync(COMPOSE_FILE, 'utf8')) as { services: Record<string, ComposeService> };
const services = compose.services;

/** The compose client on this machine: the plugin, the standalone v1, or none. */
function composeCommand(): string[] | undefined {
  for (const command of [['docker', 'compose'], ['docker-compose']]) {
    const probe = spawnSync(command[0]!, [...command.slice(1), 'version'], { encoding: 'utf8' });
    if (probe.status === 0) return command;
  }
  return undefined;
}

/** `${NAME:-default}` as compose resolves it when NAME is unset. */
function withComposeDefaults(value: string): string {
  return value.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}/g, '$1');
}

/** The bind mounts of a service: host path (relative to the repo) → container path. */
function bindMounts(service: ComposeService): Array<{ host: string; container: string }> {
  return (service.volumes ?? [])
    .map((volume) => volume.split(':'))
    .filter(([host]) => host!.startsWith('./'))
    .map(([host, container]) => ({ host: host!, container: container! }));
}

const client = composeCommand();

describe('docker-compose.yml', () => {
  it(
    'is accepted by `docker compose config` (no engine needed)',
    () => {
      // No client fails the test naming the package: a missing tool is never a skip.
      if (client === undefined) requireTool('docker-compose', ['version'], 'docker-compose');
      const [command, ...prefix] = client ?? ['docker-compose'];
      const run = (env: Record<string, string>) =>
        spawnSync(command!, [...prefix, '-f', COMPOSE_FILE, 'config'], {
          cwd: ROOT,
          encoding: 'utf8',
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
        });
      const bare = run({});
      expect(bare.stderr + bare.stdout).not.toMatch(/invalid|error/i);
      expect(bare.status).toBe(0);
      const withToken = run({ QUOTAGATE_ADMIN_TOKEN: 'compose-test-token' });
      expect(withToken.status).toBe(0);
      const resolved = parse(withToken.stdout) as { services: Record<string, ComposeService> };
      expect(resolved.services.quotagate?.environment?.QUOTAGATE_ADMIN_TOKEN).toBe('compose-test-token');
    },
  );

  it('brings up quotagate, Redis, PostgreSQL, an upstream, Prometheus and Grafana', () => {
    expect(Object.keys(services).sort()).toEqual(['grafana', 'postgres', 'prometheus', 'quotagate', 'redis', 'upstream']);
    expect(services.quotagate?.build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
    for (const [name, service] of Object.entries(services)) {
      if (name === 'quotagate') continue;
      expect(service.image, name).toMatch(/^[a-z0-9./_-]+:[A-Za-z0-9._-]+$/);
      expect(service.image, `${name}: a pinned tag`).not.toMatch(/:latest$/);
    }
  });

  it('mounts only files and directories that exist in the repository', () => {
    const mounts = Object.values(services).flatMap(bindMounts);
    expect(mounts.length).toBeGreaterThan(0);
    for (const { host } of mounts) expect(existsSync(resolve(ROOT, host)), host).toBe(true);
  });

  it("gives quotagate a config that validates with compose's environment and reaches redis, postgres and upstream", async () => {
    const gateway = services.quotagate!;
    const env = Object.fromEntries(Object.entries(gateway.environment ?? {}).map(([k, v]) => [k, withComposeDefaults(v)]));
    const configInContainer = env.QUOTAGATE_CONFIG!;
    const mount = bindMounts(gateway).find(({ container }) => configInContainer.startsWith(`${container}/`));
    expect(mount, `${configInContainer} comes from a bind mount`).toBeDefined();
    const configOnHost = resolve(ROOT, mount!.host, configInContainer.slice(mount!.container.length + 1));
    const config = await loadConfigFile(configOnHost, env);
    expect(config.store.type).toBe('redis');
    expect(config.store.redis?.url).toBe('redis://redis:6379');
    expect(config.postgres.url).toMatch(/^postgres:\/\/quotagate:[^@]+@postgres:5432\/quotagate$/);
    expect(Object.values(config.upstreams).map((u) => new URL(u.url).hostname)).toContain('upstream');
    expect(config.admin.token_env).toBe('QUOTAGATE_ADMIN_TOKEN');
    expect(Object.keys(env)).toContain('QUOTAGATE_ADMIN_TOKEN');
    // The admin listener binds every interface in its container, so that
    // Prometheus can scrape it, but is published on the host's loopback only.
    expect(config.listeners.admin.host).toBe('0.0.0.0');
    expect(gateway.ports).toContain(`${config.listeners.proxy.port}:${config.listeners.proxy.port}`);
    expect(gateway.ports).toContain(`127.0.0.1:${config.listeners.admin.port}:${config.listeners.admin.port}`);
    expect(Object.keys(gateway.depends_on ?? {})).toEqual(expect.arrayContaining(['redis', 'postgres', 'upstream']));
  });

  it('ships no admin token: the API is off by default, and a weak token is refused since the admin listener binds 0.0.0.0', async () => {
    const gateway = services.quotagate!;
    expect(gateway.environment?.QUOTAGATE_ADMIN_TOKEN).toBe('${QUOTAGATE_ADMIN_TOKEN:-}');
    expect(readFileSync(COMPOSE_FILE, 'utf8')).toContain('QUOTAGATE_ADMIN_TOKEN=$(openssl rand -hex 32) docker compose up --build');
    const env = Object.fromEntries(Object.entries(gateway.environment ?? {}).map(([k, v]) => [k, withComposeDefaults(v)]));
    const configOnHost = resolve(ROOT, 'config', env.QUOTAGATE_CONFIG!.slice('/app/config/'.length));
    await expect(loadConfigFile(configOnHost, env)).resolves.toBeDefined();
    await expect(loadConfigFile(configOnHost, { ...env, QUOTAGATE_ADMIN_TOKEN: randomBytes(32).toString('hex') })).resolves.toBeDefined();
    await expect(loadConfigFile(configOnHost, { ...env, QUOTAGATE_ADMIN_TOKEN: 'compose-test-token' })).rejects.toThrow(
      `${configOnHost}: admin.token_env: QUOTAGATE_ADMIN_TOKEN holds 18 characters, and the admin listener is bound to 0.0.0.0, beyond loopback, which needs at least 32; set a random one (e.g. openssl rand -hex 32)`,
    );
  });

  it('provisions Grafana with the Prometheus service as data source and the quotagate dashboard', () => {
    const grafana = bindMounts(services.grafana!);
    const datasources = parse(readFileSync(resolve(ROOT, 'config/grafana/datasources.yaml'), 'utf8')) as {
      datasources: Array<{ type: string; url: string }>;
    };
    expect(datasources.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    expect(services.prometheus?.ports).toContain('127.0.0.1:9090:9090');
    const providers = parse(readFileSync(resolve(ROOT, 'config/grafana/dashboards.yaml'), 'utf8')) as {
      providers: Array<{ options: { path: string } }>;
    };
    const dashboardDir = providers.providers[0]!.options.path;
    const dashboard = grafana.find(({ host }) => host === './config/grafana-dashboard.json');
    expect(dashboard?.container.startsWith(`${dashboardDir}/`)).toBe(true);
    // Provisioned dashboards get no import prompt: each panel's data source
    // must be a datasource-type variable (it picks the default, provisioned
    // above) or the provisioned uid itself.
    const json = JSON.parse(readFileSync(resolve(ROOT, 'config/grafana-dashboard.json'), 'utf8')) as {
      templating?: { list: Array<{ name: string; type: string }> };
    };
    const variables = (json.templating?.list ?? []).filter((v) => v.type === 'datasource').map((v) => '${' + v.name + '}');
    const uids = new Set<string>();
    JSON.stringify(json, (key, value: unknown) => {
      if (key === 'datasource' && typeof value === 'object' && value !== null) uids.add(String((value as { uid?: string }).uid));
      return value;
    });
    expect(uids.size).toBeGreaterThan(0);
    for (const uid of uids) expect([...variables, 'prometheus']).toContain(uid);
    expect(grafana.map(({ container }) => container)).toEqual(
      expect.arrayContaining([
        '/etc/grafana/provisioning/datasources/quotagate.yaml',
        '/etc/grafana/provisioning/dashboards/quotagate.yaml',
      ]),
    );
  });

  it('runs Prometheus on config/prometheus.yml', () => {
    const prometheus = services.prometheus!;
    const config = bindMounts(prometheus).find(({ host }) => host === './config/prometheus.yml');
    expect(config?.container).toBe('/etc/prometheus/prometheus.yml');
    const scrape = parse(readFileSync(resolve(ROOT, 'config/prometheus.yml'), 'utf8')) as {
      rule_files?: string[];
      scrape_configs: Array<{ static_configs?: Array<{ targets: string[] }> }>;
    };
    const targets = scrape.scrape_configs.flatMap((job) => job.static_configs ?? []).flatMap((c) => c.targets);
    expect(targets).toContain('quotagate:8081');
    // Rule files are read relative to the config file: each must be mounted beside it.
    const mounted = bindMounts(prometheus).map(({ container }) => container);
    for (const rules of scrape.rule_files ?? []) expect(mounted).toContain(`/etc/prometheus/${rules}`);
  });
});
