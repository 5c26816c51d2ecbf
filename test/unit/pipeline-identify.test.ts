import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ApiKeyAuthenticator } from '../../src/auth/api-key-authenticator.js';
import { FileKeyStore } from '../../src/auth/file-key-store.js';
import { parseConfigText } from '../../src/config/load.js';
import { GatewayError } from '../../src/core/errors.js';
import { Exchange } from '../../src/http/exchange.js';
import { identify } from '../../src/http/middleware/identify.js';
import { RouteTable } from '../../src/http/route-table.js';
import { ClientAddressResolver } from '../../src/proxy/client-address.js';
import { ManualClock } from '../support/manual-clock.js';
import { TEST_KEY, TEST_KEY_HASH, UNKNOWN_KEY } from '../support/test-keys.js';

/**
 * The identify step of the proxy pipeline, in process: built from its
 * options as app.ts builds it, run on an Exchange over node's own request
 * and response objects (no socket is connected, nothing listens), without
 * the composition root, a listener or an upstream.
 */

const CONFIG = parseConfigText(
  `
upstreams:
  app: { url: "http://127.0.0.1:9" }
routes:
  - { name: public, path_prefix: /public, upstream: app, auth: none }
  - { name: api, path_prefix: /, upstream: app }
auth:
  api_keys:
    keys:
      - { id: test-key, hash: ${TEST_KEY_HASH}, subject: customer-1, plan: small }
plans:
  small: { limits: { minute: 3 } }
  anonymous: { limits: { minute: 2 } }
`,
  'identify-test.yaml',
  {},
);
const ROUTES = new RouteTable(CONFIG.routes);

/** The identify step over the config's keys; `failures` records each refusal's reason. */
function identifyStep(failures: string[] = []) {
  const apiKeys = new ApiKeyAuthenticator({ prefix: 'qg', keyStore: new FileKeyStore(CONFIG.auth.api_keys.keys), clock: new ManualClock(0) });
  return identify({
    authenticators: { api_key: apiKeys },
    clientAddress: new ClientAddressResolver([]),
    anonymousPlan: CONFIG.auth.anonymous_plan,
    apiKeyPrefix: 'qg',
    onAuthFailure: (reason) => void failures.push(reason),
  });
}

/** An exchange for `GET path` with `headers`, from `peer`, its route matched as the route step does. */
function exchangeFor(path: string, headers: Record<string, string>, peer = '198.51.100.7'): Exchange {
  const socket = new Socket();
  Object.defineProperty(socket, 'remoteAddress', { value: peer });
  const req = new IncomingMessage(socket);
  req.method = 'GET';
  req.url = path;
  req.headers = headers;
  const exchange = new Exchange(req, new ServerResponse(req), 0);
  const route = ROUTES.match('GET', path);
  if (route === undefined || route === 'ambiguous-case') throw new Error(`no route for ${path}`);
  exchange.route = route;
  return exchange;
}

async function refusal(step: ReturnType<typeof identifyStep>, exchange: Exchange): Promise<GatewayError> {
  const error = await Promise.resolve()
    .then(() => step(exchange))
    .then(() => undefined, (e: unknown) => e);
  if (!(error instanceof GatewayError)) throw new Error(`expected a refusal, got ${String(error)}`);
  return error;
}

describe('the identify step (in process, without the composition root)', () => {
  it('charges an API key in X-API-Key to its subject and plan, and withholds nothing more from the upstream', async () => {
    const exchange = exchangeFor('/things', { 'x-api-key': TEST_KEY });
    await identifyStep()(exchange);
    expect(exchange.identity).toMatchObject({ subject: 'customer-1', plan: 'small' });
    expect(exchange.credentialHeaders).toEqual([]);
  });

  it('withholds Authorization from the upstream when it carries the API key', async () => {
    const exchange = exchangeFor('/things', { authorization: `Bearer ${TEST_KEY}` });
    await identifyStep()(exchange);
    expect(exchange.identity?.subject).toBe('customer-1');
    expect(exchange.credentialHeaders).toEqual(['authorization']);
  });

  it('refuses an unknown key with 401 invalid_api_key, counts it once, and identifies nobody', async () => {
    const failures: string[] = [];
    const exchange = exchangeFor('/things', { 'x-api-key': UNKNOWN_KEY });
    const error = await refusal(identifyStep(failures), exchange);
    expect([error.status, error.code]).toEqual([401, 'invalid_api_key']);
    expect(failures).toEqual(['unknown']);
    expect(exchange.identity).toBeUndefined();
  });

  it('refuses a request without credentials with 401 missing_credentials and a bare Bearer challenge', async () => {
    const failures: string[] = [];
    const error = await refusal(identifyStep(failures), exchangeFor('/things', {}));
    expect([error.status, error.code, error.detail, error.headers]).toEqual([
      401,
      'missing_credentials',
      'This route needs an API key in the X-API-Key header or as Authorization: Bearer <key>.',
      [['www-authenticate', 'Bearer']],
    ]);
    expect(failures).toEqual(['missing']);
  });

  it('charges an auth: none route to the peer address on the anonymous plan, without asking an authenticator', async () => {
    const failures: string[] = [];
    const exchange = exchangeFor('/public/page', { 'x-forwarded-for': '203.0.113.9' }, '198.51.100.7');
    await identifyStep(failures)(exchange);
    // No trusted proxies: X-Forwarded-For is not believed.
    expect(exchange.identity).toEqual({ subject: 'ip:198.51.100.7', plan: 'anonymous' });
    expect(failures).toEqual([]);
  });
});
