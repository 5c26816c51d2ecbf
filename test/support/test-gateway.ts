import { pino } from 'pino';
import { loadConfigFile, parseConfigText } from '../../src/config/load.js';
import { ManualClock } from './manual-clock.js';
import { type RunningGateway, startGateway } from '../../src/main.js';
import { TEST_KEY_HASH } from './test-keys.js';

/** The test keys, for the tests that import them from here. */
export { TEST_KEY, TEST_KEY_HASH, UNKNOWN_KEY } from './test-keys.js';

/** 2026-06-15T10:30:00Z: 30 minutes to the next hour, far from any day or month boundary. */
export const FIXED_NOW_MS = Date.UTC(2026, 5, 15, 10, 30, 0);

export interface TestGateway {
  readonly gateway: RunningGateway;
  readonly proxyUrl: string;
  readonly adminUrl: string;
  readonly clock: ManualClock;
}

export interface TestGatewayOptions {
  /** Open and migrate the config's `postgres` database (default false: the embedded engine takes seconds to start). */
  readonly database?: boolean;
  /** The admin API's bearer token; absent: the API is off. */
  readonly adminToken?: string;
  /** Collects every log line (level trace) instead of discarding them. */
  readonly logLines?: string[];
  /** The file a reload re-reads (`gateway.reload()`, `POST /admin/reload`); absent: reloads are refused. */
  readonly configFile?: string;
  /**
   * With the Redis store: its scripts take the time from the manual clock
   * (not Redis TIME), so windows move only when the test advances the clock
   * and no request straddles a real boundary. Default false: Redis TIME.
   */
  readonly redisOnTestClock?: boolean;
  /** Where the gateway reads its pages' bundle; default dist/ui. */
  readonly uiDirectory?: string;
}

/**
 * A gateway on ephemeral loopback ports with `yaml` as its config, on a
 * manual clock fixed at FIXED_NOW_MS (so no window boundary passes mid-test).
 * Callers shut it down with `gateway.shutdown()`.
 */
export async function startTestGateway(yaml: string, options: TestGatewayOptions = {}): Promise<TestGateway> {
  const config = parseConfigText(yaml, 'test.yaml', {});
  const clock = new ManualClock(FIXED_NOW_MS);
  const logger =
    options.logLines === undefined
      ? pino({ level: 'silent' })
      : pino({ level: 'trace' }, { write: (line: string) => void options.logLines!.push(line) });
  const gateway = await startGateway(config, {
    logger,
    clock,
    processMetrics: false,
    database: options.database ?? false,
    adminToken: options.adminToken,
    ...(options.redisOnTestClock === true ? { redisNowForTesting: () => clock.now() } : {}),
    ...(options.configFile === undefined ? {} : { loadConfig: () => loadConfigFile(options.configFile!, {}) }),
    ...(options.uiDirectory === undefined ? {} : { uiDirectory: options.uiDirectory }),
  });
  return { gateway, proxyUrl: gateway.proxyUrl, adminUrl: gateway.adminUrl, clock };
}

/** A config with one upstream and the given routes and plans sections, on ephemeral ports. */
export function testConfig(options: {
  upstreamOrigin: string;
  routes: string;
  plans?: string;
  extra?: string;
  headersTimeoutMs?: number;
  /** The body of `auth.jwt` (its fields, indented four spaces). */
  jwt?: string;
  /** The body of `postgres` (its fields, indented two spaces); default: an in-memory embedded database. */
  postgres?: string;
}): string {
  return `
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
upstreams:
  app:
    url: ${options.upstreamOrigin}
    connect_timeout_ms: 500
    headers_timeout_ms: ${options.headersTimeoutMs ?? 2000}
    body_timeout_ms: 2000
routes:
${options.routes}
auth:
  api_keys:
    keys:
      - { id: test-key, hash: ${TEST_KEY_HASH}, subject: customer-1, plan: small }
${options.jwt === undefined ? '' : `  jwt:\n${options.jwt}`}
plans:
${options.plans ?? `  small: { limits: { minute: 3, hour: 100 } }
  anonymous: { limits: { minute: 2 } }`}
shutdown:
  drain_timeout_ms: 2000
postgres:
${options.postgres ?? '  data_dir: "memory://"'}
${options.extra ?? ''}`;
}
