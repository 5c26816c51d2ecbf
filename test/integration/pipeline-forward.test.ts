import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { ChargeReceipt } from '../../src/core/decision.js';
import { GatewayError } from '../../src/core/errors.js';
import { Exchange } from '../../src/http/exchange.js';
import { forward } from '../../src/http/middleware/forward.js';
import { RouteTable } from '../../src/http/route-table.js';
import { ClientAddressResolver } from '../../src/proxy/client-address.js';
import { Forwarder } from '../../src/proxy/forwarder.js';
import { UpstreamPools } from '../../src/proxy/upstream-pools.js';
import { unusedPort } from '../support/ports.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { eventually, within } from '../support/within.js';

/**
 * The forward step of the proxy pipeline, in process: built from its options
 * as app.ts builds it, over a real Forwarder and a recording upstream, run on
 * an Exchange that a bare node:http server fills in as the route, identify
 * and limit steps would (a receipt, rate-limit headers, the credential's
 * header), without the composition root. The refund callback records what
 * it was given; the store behind it is the limit step's business.
 */

const WAIT_MS = 5_000;
const RECEIPT: ChargeReceipt = { subject: 'acme', cost: 2, charges: [{ counterId: 'w:hour', periodStartMs: Date.UTC(2026, 5, 15, 10) }] };

interface FrontRequestOutcome {
  readonly exchange: Exchange;
  /** What the step threw (the HTTP layer's error handler would answer it), if anything. */
  readonly thrown: unknown;
}

interface Harness {
  readonly upstream: RecordingUpstream;
  readonly client: Pool;
  /** Every receipt the step gave back, in order. */
  readonly refunds: ChargeReceipt[];
  /** Each request's exchange once the step settled. */
  readonly outcomes: FrontRequestOutcome[];
  close(): Promise<void>;
}

let deadPort: number;
let harness: Harness;

beforeAll(async () => {
  deadPort = await unusedPort();
  harness = await startHarness();
});
afterAll(async () => {
  await harness.close();
});
afterEach(() => {
  harness.refunds.length = 0;
  harness.outcomes.length = 0;
  harness.upstream.configure({});
});

async function startHarness(): Promise<Harness> {
  const upstream = await startRecordingUpstream();
  const config = parseConfigText(
    `
upstreams:
  app: { url: "${upstream.origin}" }
  gone: { url: "http://127.0.0.1:${deadPort}", connect_timeout_ms: 1000 }
routes:
  - { name: refunding, path_prefix: /refunding, upstream: app, refund_on: [5xx, error] }
  - { name: keeping, path_prefix: /keeping, upstream: app }
  - { name: unreachable, path_prefix: /unreachable, upstream: gone, refund_on: [error] }
  - { name: unreachable-keeping, path_prefix: /unreachable-keeping, upstream: gone }
plans:
  free: { limits: { hour: 100 } }
`,
    'forward-test.yaml',
    {},
  );
  const routes = new RouteTable(config.routes);
  const forwarder = new Forwarder({ pools: new UpstreamPools(config.upstreams), clientAddress: new ClientAddressResolver([]) });
  const refunds: ChargeReceipt[] = [];
  const outcomes: FrontRequestOutcome[] = [];
  const step = forward({
    forwarder,
    maxBodyBytes: config.proxy.max_body_bytes,
    onUpstreamTimed: () => {},
    refund: async (receipt) => {
      refunds.push(receipt);
      return true;
    },
  });

  const server: Server = createServer((req, res) => {
    const exchange = new Exchange(req, res, 0);
    const path = req.url ?? '/';
    const route = routes.match(req.method ?? 'GET', path.split('?')[0]!);
    if (route === undefined || route === 'ambiguous-case') {
      res.writeHead(404).end();
      return;
    }
    exchange.route = route;
    // What the earlier steps leave behind: the target to forward (a test sends a bad one through `x-target`), who
    // pays, the credential's header, the rate-limit headers and the receipt.
    exchange.forwardPath = exchange.header('x-target') ?? path;
    exchange.requestId = 'req-1';
    exchange.identity = { subject: 'acme', plan: 'free' };
    exchange.credentialHeaders = ['x-api-key'];
    exchange.rateLimitHeaders = [['ratelimit', '"hour";r=98;t=1800']];
    exchange.receipt = RECEIPT;
    step(exchange).then(
      () => outcomes.push({ exchange, thrown: undefined }),
      (error: unknown) => {
        outcomes.push({ exchange, thrown: error });
        res.writeHead(error instanceof GatewayError ? error.status : 500).end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  return {
    upstream,
    client,
    refunds,
    outcomes,
    async close() {
      await client.close();
      await forwarder.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await upstream.close();
    },
  };
}

async function send(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown> }> {
  const response = await within(harness.client.request({ method: 'GET', path, headers: { 'x-api-key': 'qg_secret', ...headers } }), WAIT_MS, `GET ${path}`);
  await response.body.text();
  // The step settles after the response finished; wait for its outcome.
  await eventually(() => harness.outcomes.length > 0, WAIT_MS, 'the forward step to settle');
  return { status: response.statusCode, headers: response.headers };
}

describe('the forward step (in process, without the composition root)', () => {
  it('forwards the target the route step chose, withholds the credential, and adds the rate-limit headers and the request id', async () => {
    harness.upstream.configure({ reply: { status: 201, body: 'made' } });
    const answer = await send('/keeping/things?page=2');
    expect(answer.status).toBe(201);
    expect(answer.headers['ratelimit']).toBe('"hour";r=98;t=1800');
    expect(answer.headers['x-request-id']).toBe('req-1');
    const seen = harness.upstream.requests.at(-1)!;
    expect(seen.url).toBe('/keeping/things?page=2');
    expect(seen.headers['x-api-key']).toBeUndefined();
    expect(seen.headers['x-request-id']).toBe('req-1');
    expect(harness.refunds).toEqual([]);
    expect(harness.outcomes[0]!.exchange.decision).toBeUndefined();
    expect(harness.outcomes[0]!.exchange.upstreamMs).toBeGreaterThanOrEqual(0);
  });

  it('gives the charge back when the upstream answers 5xx on a route with refund_on: [5xx], and marks the decision refunded', async () => {
    harness.upstream.configure({ reply: { status: 503, body: 'down' } });
    const answer = await send('/refunding/x');
    expect(answer.status).toBe(503);
    expect(harness.refunds).toEqual([RECEIPT]);
    expect(harness.outcomes[0]!.exchange.decision).toBe('refunded');
  });

  it('keeps the charge for a 5xx on a route without refund_on, and for a 4xx on a refunding route', async () => {
    harness.upstream.configure({ reply: { status: 500 } });
    expect((await send('/keeping/x')).status).toBe(500);
    harness.outcomes.length = 0;
    harness.upstream.configure({ reply: { status: 404 } });
    expect((await send('/refunding/x')).status).toBe(404);
    expect(harness.refunds).toEqual([]);
  });

  it('throws upstream_unavailable for an upstream that refuses connections, refunding only where refund_on names error', async () => {
    await send('/unreachable/x');
    const refunded = harness.outcomes[0]!;
    expect(refunded.thrown).toBeInstanceOf(GatewayError);
    expect((refunded.thrown as GatewayError).code).toBe('upstream_unavailable');
    expect(harness.refunds).toEqual([RECEIPT]);
    expect(refunded.exchange.decision).toBe('refunded');

    harness.outcomes.length = 0;
    harness.refunds.length = 0;
    await send('/unreachable-keeping/x');
    expect((harness.outcomes[0]!.thrown as GatewayError).code).toBe('upstream_unavailable');
    expect(harness.refunds).toEqual([]);
  });

  it('always gives back the charge of a request the gateway refuses itself before the upstream (a target that is not a path)', async () => {
    const requestsBefore = harness.upstream.requests.length;
    const answer = await send('/keeping/x', { 'x-target': 'keeping/x' });
    expect(answer.status).toBe(400);
    expect((harness.outcomes[0]!.thrown as GatewayError).code).toBe('bad_request');
    expect(harness.refunds).toEqual([RECEIPT]);
    expect(harness.upstream.requests.length).toBe(requestsBefore);
  });
});
