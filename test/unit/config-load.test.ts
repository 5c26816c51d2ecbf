import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, parseConfigText } from '../../src/config/load.js';
import { configProblems, MINIMAL_CONFIG } from '../support/config-problems.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/config/', import.meta.url));

const MINIMAL = MINIMAL_CONFIG;

const problemsOf = configProblems;

describe('parseConfigText', () => {
  it('fills every documented default into a minimal config', () => {
    expect(parseConfigText(MINIMAL, 'gateway.yaml', {})).toEqual({
      listeners: { proxy: { host: '0.0.0.0', port: 8080 }, admin: { host: '127.0.0.1', port: 8081 } },
      store: {
        type: 'memory',
        circuit_breaker: { failure_threshold: 5, open_ms: 1_000 },
        local_deny_cache: { max_entries: 10_000 },
      },
      proxy: {
        max_body_bytes: 10_485_760,
        trusted_proxies: [],
        max_connections: 10_000,
        headers_timeout_ms: 10_000,
        keep_alive_timeout_ms: 5_000,
        body_idle_timeout_ms: 10_000,
        body_min_bytes_per_s: 1_024,
        request_timeout_ms: 300_000,
      },
      headers: { reset_format: 'delta-seconds', ietf: true, legacy: true, legacy_per_window: true },
      idempotency: {
        max_body_bytes: 1_048_576,
        max_response_bytes: 1_048_576,
        ttl_ms: 86_400_000,
        in_flight_ttl_ms: 120_000,
        memory: { max_bytes: 268_435_456, subject_max_bytes: 16_777_216 },
      },
      postgres: { data_dir: './data', max_connections: 10, statement_timeout_ms: 5_000, connect_timeout_ms: 5_000, replica_max_lag_ms: 1_000 },
      auth: {
        api_keys: {
          prefix: 'qg',
          keys: [],
          cache: { max_entries: 100_000, ttl_ms: 300_000, negative_max_entries: 10_000, negative_ttl_ms: 10_000 },
          lookup_throttle: { unknown_per_second: 10, max_clients: 100_000 },
        },
        anonymous_plan: 'anonymous',
        jwt: { issuers: [], default_plan: 'free', max_token_bytes: 8_192, token_cache: { max_entries: 10_000, ttl_ms: 30_000 } },
      },
      upstreams: {
        demo: {
          url: 'http://127.0.0.1:3000',
          connect_timeout_ms: 2_000,
          headers_timeout_ms: 30_000,
          body_timeout_ms: 30_000,
          connections: 128,
          keep_alive_timeout_ms: 4_000,
          queue_timeout_ms: 2_000,
        },
      },
      routes: [
        { name: 'api', path_prefix: '/api', upstream: 'demo', auth: 'api_key', forward_token: true, cost: 1, on_store_error: 'closed', hide_headers: false, refund_on: [],
          idempotency_methods: ['POST', 'PATCH'], mode: 'enforce' },
      ],
      plans: { free: { limits: {}, quotas: {}, quota_status: 429, public: true, mode: 'enforce', thresholds: [80, 95, 100], limit_by: 'subject' } },
      usage: { flush_interval_ms: 5_000 },
      events: {
        stream_max_length: 100_000,
        webhooks: [],
        delivery: { max_attempts: 8, backoff_base_ms: 1_000, backoff_max_ms: 300_000, max_pending: 10_000, concurrency: 4, poll_interval_ms: 500, reclaim_after_ms: 60_000 },
      },
      admin: {},
      dashboard: { enabled: true, operator_page: true },
      shutdown: { drain_timeout_ms: 10_000 },
      logging: { level: 'info', access_log: { enabled: true, include_subject: false } },
    });
  });

  it('fills the defaults of a partly given section', () => {
    const config = parseConfigText(`${MINIMAL}listeners:\n  proxy:\n    port: 9000\n`, 'gateway.yaml', {});
    expect(config.listeners).toEqual({ proxy: { host: '0.0.0.0', port: 9000 }, admin: { host: '127.0.0.1', port: 8081 } });
  });

  it('fills the defaults of a webhook endpoint, whose secret comes from the environment', () => {
    const secret = `whsec_${Buffer.alloc(24, 1).toString('base64')}`;
    const config = parseConfigText(`${MINIMAL}events:\n  webhooks:\n    - { url: "https://hooks.example.com/q", secret_env: HOOK_SECRET }\n`, 'gateway.yaml', { HOOK_SECRET: secret });
    expect(config.events.webhooks).toEqual([
      {
        url: 'https://hooks.example.com/q',
        secret_env: 'HOOK_SECRET',
        types: ['quota.threshold', 'quota.exhausted', 'credits.low', 'credits.exhausted', 'subject.denial_spike'],
        timeout_ms: 5_000,
      },
    ]);
    expect(JSON.stringify(config)).not.toContain(secret);
  });

  it('returns a deep-frozen config', () => {
    const config = parseConfigText(MINIMAL, 'gateway.yaml', {});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.listeners.proxy)).toBe(true);
    expect(Object.isFrozen(config.routes)).toBe(true);
    expect(Object.isFrozen(config.routes[0])).toBe(true);
    expect(Object.isFrozen(config.plans.free?.limits)).toBe(true);
    expect(() => {
      (config.listeners.proxy as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('reports every schema problem at once, in document order', () => {
    const text = `${MINIMAL}listeners:\n  proxy:\n    port: 70000\n    hots: x\ncolour: blue\n`;
    expect(problemsOf(text)).toEqual([
      'gateway.yaml: listeners.proxy.port: must be at most 65535',
      'gateway.yaml: listeners.proxy.hots: unknown key',
      'gateway.yaml: colour: unknown key',
    ]);
  });

  it('reports cross-field problems together with field problems', () => {
    const text = MINIMAL.replace('upstream: demo', 'upstream: billing').replace('free: {}', 'free: {limits: {hour: 0}}');
    expect(problemsOf(text)).toEqual([
      'gateway.yaml: plans.free.limits.hour: must be at least 1',
      'gateway.yaml: routes[0].upstream: unknown upstream "billing" (defined: demo)',
    ]);
  });

  it('reports every unknown key of one mapping on its own line', () => {
    expect(problemsOf(`${MINIMAL}colour: blue\nsize: 3\n`)).toEqual(['gateway.yaml: colour: unknown key', 'gateway.yaml: size: unknown key']);
  });

  it('quotes a path segment that is not a plain word', () => {
    expect(problemsOf(`${MINIMAL}"my key": 1\n`)).toEqual(['gateway.yaml: ["my key"]: unknown key']);
  });

  it('names infinite and NaN numbers as YAML writes them', () => {
    expect(problemsOf(MINIMAL.replace('free: {}', 'free: {limits: {hour: .inf, day: .nan}}'))).toEqual([
      'gateway.yaml: plans.free.limits.hour: expected a number, got .inf',
      'gateway.yaml: plans.free.limits.day: expected a number, got .nan',
    ]);
  });

  it('suggests quotes when YAML read text as a number or a boolean', () => {
    const text = MINIMAL.replace('free: {}', `free: {}\nauth:\n  api_keys:\n    keys:\n      - hash: ${'0'.repeat(63)}1\n        subject: true\n        plan: free`);
    expect(problemsOf(text)).toEqual([
      'gateway.yaml: auth.api_keys.keys[0].hash: expected a string, got a number (1); put it in quotes',
      'gateway.yaml: auth.api_keys.keys[0].subject: expected a string, got a boolean (true); put it in quotes',
    ]);
  });

  it('reports only the first YAML syntax error, with its line and column', () => {
    expect(problemsOf('plans:\n  free: {limits: [1, 2}\n')).toEqual([
      expect.stringMatching(/^gateway\.yaml: line 2, column \d+: invalid YAML: /),
    ]);
  });

  it('rejects a document with more than one YAML document', () => {
    expect(problemsOf(`${MINIMAL}---\nplans: {}\n`)).toEqual([
      expect.stringMatching(/^gateway\.yaml: line 11, column 1: invalid YAML: Source contains multiple documents/),
    ]);
  });

  it('resolves YAML anchors and aliases', () => {
    const text = `${MINIMAL.replace('free: {}', 'free: &limits {limits: {hour: 10}}')}  pro: *limits\n`;
    expect(parseConfigText(text, 'gateway.yaml', {}).plans).toEqual({
      free: { limits: { hour: 10 }, quotas: {}, quota_status: 429, public: true, mode: 'enforce', thresholds: [80, 95, 100], limit_by: 'subject' },
      pro: { limits: { hour: 10 }, quotas: {}, quota_status: 429, public: true, mode: 'enforce', thresholds: [80, 95, 100], limit_by: 'subject' },
    });
  });
});

describe('ConfigError', () => {
  it('carries one full line per problem and joins them as its message', () => {
    let caught: unknown;
    try {
      parseConfigText(`${MINIMAL}colour: blue\nsize: 3\n`, 'conf/gw.yaml', {});
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.name).toBe('ConfigError');
    expect(error.problems).toEqual(['conf/gw.yaml: colour: unknown key', 'conf/gw.yaml: size: unknown key']);
    expect(error.message).toBe('conf/gw.yaml: colour: unknown key\nconf/gw.yaml: size: unknown key');
    expect(Object.isFrozen(error.problems)).toBe(true);
  });
});

describe('loadConfigFile', () => {
  it('loads a valid file to the same config parseConfigText gives', async () => {
    const path = join(FIXTURES, 'valid-minimal.yaml');
    const config = await loadConfigFile(path, {});
    expect(config).toEqual(parseConfigText(await readFile(path, 'utf8'), 'x', {}));
  });

  it('labels problems with the path exactly as given', async () => {
    const path = fileURLToPath(new URL('../fixtures/config/bad-port.yaml', import.meta.url));
    await expect(loadConfigFile(path, {})).rejects.toMatchObject({
      problems: [`${path}: listeners.proxy.port: must be at most 65535`],
    });
  });

  it('reports a missing file as "cannot read"', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'quotagate-config-')), 'absent.yaml');
    await expect(loadConfigFile(path, {})).rejects.toThrow(new ConfigError([`${path}: cannot read: no such file`]));
  });

  it('reports a directory as "cannot read"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quotagate-config-'));
    await expect(loadConfigFile(dir, {})).rejects.toMatchObject({ problems: [`${dir}: cannot read: is a directory`] });
  });

  it('interpolates from the environment it is given', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'quotagate-config-')), 'gateway.yaml');
    writeFileSync(path, MINIMAL.replace('http://127.0.0.1:3000', '${UPSTREAM_URL}'));
    const config = await loadConfigFile(path, { UPSTREAM_URL: 'https://api.internal:8443' });
    expect(config.upstreams.demo?.url).toBe('https://api.internal:8443');
  });
});
