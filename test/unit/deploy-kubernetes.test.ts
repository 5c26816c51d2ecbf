import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { posix, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ConfigError, parseConfigText } from '../../src/config/load.js';

/**
 * config/kubernetes/: the sidecar example that docs/deployment.md describes,
 * read as YAML and checked for the fields the docs name. No cluster is
 * needed; `kubectl apply --dry-run=server` is the check against a real one.
 */
const DIR = resolve(import.meta.dirname, '../../config/kubernetes');

interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean };
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: {
    selector?: Record<string, unknown>;
    ports?: Array<{ port: number; targetPort: string | number }>;
    template?: {
      metadata: { labels: Record<string, string> };
      spec: {
        securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
        containers: Container[];
        volumes?: Array<{ name: string; configMap?: { name: string; items?: Array<{ key: string; path: string }> } }>;
      };
    };
  };
}

const manifests: Manifest[] = readdirSync(DIR)
  .filter((file) => file.endsWith('.yaml'))
  .flatMap((file) =>
    parseAllDocuments(readFileSync(resolve(DIR, file), 'utf8')).map((doc) => {
      expect(doc.errors, file).toEqual([]);
      return doc.toJS() as Manifest;
    }),
  );
const only = (kind: string): Manifest => {
  const found = manifests.filter((m) => m.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};
const deployment = only('Deployment');
const configMap = only('ConfigMap');
const secret = only('Secret');
const service = only('Service');
const pod = deployment.spec!.template!.spec;
const quotagate = pod.containers.find((c) => c.name === 'quotagate')!;
const app = pod.containers.find((c) => c.name !== 'quotagate')!;
const envValue = (name: string) => quotagate.env?.find((e) => e.name === name)?.value;
const portNumber = (port: string | number) =>
  typeof port === 'number' ? port : quotagate.ports?.find((p) => p.name === port)?.containerPort;

describe('Kubernetes sidecar example', () => {
  it('holds a Deployment, a ConfigMap, a Secret and a Service, each with apiVersion and name', () => {
    expect(manifests.map((m) => m.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Secret', 'Service']);
    for (const m of manifests) {
      expect(m.apiVersion, m.kind).toMatch(/^(v1|apps\/v1)$/);
      expect(m.metadata.name, m.kind).toMatch(/^[a-z0-9-]+$/);
    }
    expect(deployment.spec?.selector).toEqual({ matchLabels: deployment.spec?.template?.metadata.labels });
  });

  it('runs quotagate beside an app container, with the proxy port as the Service target', () => {
    expect(pod.containers.map((c) => c.name)).toEqual(['app', 'quotagate']);
    expect(quotagate.ports).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'proxy', containerPort: 8080 }), expect.objectContaining({ name: 'admin', containerPort: 8081 })]),
    );
    expect(service.spec?.selector).toEqual(deployment.spec?.template?.metadata.labels);
    expect(service.spec?.ports?.map((p) => portNumber(p.targetPort))).toEqual([8080]);
    // The app is reachable only through quotagate: it declares no port and listens on loopback.
    expect(app.ports).toBeUndefined();
    expect(app.args?.join(' ')).toContain('127.0.0.1:3000');
  });

  it('probes liveness on /healthz and readiness on /readyz of the admin listener, bound to 0.0.0.0', () => {
    expect(quotagate.livenessProbe?.httpGet.path).toBe('/healthz');
    expect(quotagate.readinessProbe?.httpGet.path).toBe('/readyz');
    expect(quotagate.startupProbe?.httpGet.path).toBe('/healthz');
    for (const probe of [quotagate.livenessProbe, quotagate.readinessProbe, quotagate.startupProbe]) {
      expect(portNumber(probe!.httpGet.port)).toBe(8081);
    }
    expect(envValue('QUOTAGATE_ADMIN_HOST')).toBe('0.0.0.0');
  });

  it('mounts the ConfigMap key gateway.yaml where QUOTAGATE_CONFIG points', () => {
    const configPath = envValue('QUOTAGATE_CONFIG')!;
    const volume = pod.volumes?.find((v) => v.configMap?.name === configMap.metadata.name);
    expect(volume).toBeDefined();
    const mount = quotagate.volumeMounts?.find((m) => m.name === volume!.name);
    const item = volume!.configMap!.items?.find((i) => posix.join(mount!.mountPath, i.path) === configPath);
    expect(item?.key, `${configPath} is a key of ${configMap.metadata.name}`).toBe('gateway.yaml');
    expect(Object.keys(configMap.data ?? {})).toContain(item!.key);
  });

  const secretRefs = (quotagate.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [{ env: e.name, ...e.valueFrom.secretKeyRef }] : []));
  /** A token as `openssl rand -hex 32` (secret.yaml's command) makes it. */
  const generatedToken = randomBytes(32).toString('hex');
  /** The pod's environment, with `adminToken` in the admin token Secret you create. */
  const podEnv = (adminToken: string): Record<string, string> => {
    const env: Record<string, string> = {};
    for (const e of quotagate.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      env[e.name] = ref === undefined ? e.value! : ref.name === secret.metadata.name ? secret.stringData![ref.key]! : adminToken;
    }
    return env;
  };

  it('takes the Redis and database URLs from keys the shipped Secret defines', () => {
    const shipped = secretRefs.filter((r) => r.name === secret.metadata.name);
    expect(shipped.map((r) => r.key).sort()).toEqual(['database-url', 'redis-url']);
    for (const ref of shipped) expect(Object.keys(secret.stringData ?? secret.data ?? {})).toContain(ref.key);
  });

  it('ships no admin token: it comes from a Secret you create with a random token, which the pod requires', () => {
    const admin = secretRefs.filter((r) => r.env === 'QUOTAGATE_ADMIN_TOKEN');
    expect(admin).toEqual([{ env: 'QUOTAGATE_ADMIN_TOKEN', name: 'quotagate-admin-token', key: 'admin-token' }]);
    expect(manifests.filter((m) => m.kind === 'Secret').map((m) => m.metadata.name)).not.toContain('quotagate-admin-token');
    expect(Object.keys(secret.stringData ?? {})).not.toContain('admin-token');
    const secretFile = readFileSync(resolve(DIR, 'secret.yaml'), 'utf8');
    expect(secretFile).toContain('kubectl create secret generic quotagate-admin-token \\\n#     --from-literal=admin-token="$(openssl rand -hex 32)"');
  });

  it("gives quotagate a gateway.yaml that validates with the pod's environment and proxies to the app on localhost", () => {
    const env = podEnv(generatedToken);
    const config = parseConfigText(configMap.data!['gateway.yaml']!, 'configmap.yaml: gateway.yaml', env);
    expect(config.listeners.admin).toEqual({ host: '0.0.0.0', port: 8081 });
    expect(config.listeners.proxy.port).toBe(8080);
    expect(config.admin.token_env).toBe('QUOTAGATE_ADMIN_TOKEN');
    expect(config.store.redis?.url).toBe(env.REDIS_URL);
    expect(config.postgres.url).toBe(env.DATABASE_URL);
    expect(Object.values(config.upstreams).map((u) => u.url)).toEqual(['http://127.0.0.1:3000']);
  });

  it.each([
    ['the placeholder the example once shipped', 'change-me-to-a-long-random-token',
      "QUOTAGATE_ADMIN_TOKEN holds a placeholder token from quotagate's examples, and the admin listener is bound to 0.0.0.0, beyond loopback; set a random one (e.g. openssl rand -hex 32)"],
    ['a short token', 'letmein',
      'QUOTAGATE_ADMIN_TOKEN holds 7 characters, and the admin listener is bound to 0.0.0.0, beyond loopback, which needs at least 32; set a random one (e.g. openssl rand -hex 32)'],
  ])('refuses to start with %s, since the admin listener is on the pod IP', (_, token, message) => {
    expect(() => parseConfigText(configMap.data!['gateway.yaml']!, 'gateway.yaml', podEnv(token))).toThrow(
      new ConfigError([`gateway.yaml: admin.token_env: ${message}`]),
    );
  });

  it('runs as non-root with resource requests and limits on every container', () => {
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
    expect(pod.securityContext?.runAsUser).toBeGreaterThan(0);
    for (const container of pod.containers) {
      expect(container.resources?.requests, container.name).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
      expect(container.resources?.limits, container.name).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
      expect(container.securityContext, container.name).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
      expect(container.image, container.name).toMatch(/:[A-Za-z0-9._-]+$/);
      expect(container.image, container.name).not.toMatch(/:latest$/);
    }
  });
});
