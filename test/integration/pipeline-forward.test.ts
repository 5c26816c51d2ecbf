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
import { startRecordingUpstream, type RecordingUpstream, type UpstreamHandler } from '../support/recording-upstream.js';
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
  /** Every adjustment the step made (a settled cost), in order. */
  readonly adjustments: Array<{ readonly receipt: ChargeReceipt; readonly delta: number }>;
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
  harness.adjustments.length = 0;
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
  - name: settling
    path_prefix: /settling
    upstream: app
    refund_on: [5xx]
    cost: { reserve: 2, from_response: { header: X-Usage-Units } }
  - name: settling-trailer
    path_prefix: /settling-trailer
    upstream: app
    cost: { reserve: 2, from_response: { trailer: X-Usage-Units } }
plans:
  free: { limits: { hour: 100 } }
`,
    'forward-test.yaml',
    {},
  );
  const routes = new RouteTable(config.routes);
  const forwarder = new Forwarder({ pools: new UpstreamPools(config.upstreams), clientAddress: new ClientAddressResolver([]) });
  const refunds: ChargeReceipt[] = [];
  const adjustments: Array<{ receipt: ChargeReceipt; delta: number }> = [];
  const outcomes: FrontRequestOutcome[] = [];
  const step = forward({
    forwarder,
    maxBodyBytes: config.proxy.max_body_bytes,
    onUpstreamTimed: () => {},
    refund: async (receipt) => {
      refunds.push(receipt);
      return true;
    },
    adjust: async (receipt, delta) => {
      adjustments.push({ receipt, delta });
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
    adjustments,
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

/** A chunked response whose last part is the trailer `x-usage-units: <units>`. */
function answerWithTrailer(units: string): UpstreamHandler {
  return (request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(200, { trailer: 'X-Usage-Units' });
      response.write('part one, ');
      response.addTrailers({ 'X-Usage-Units': units });
      response.end('part two');
    });
  };
}

/** Sends the head and one chunk, then never ends: the client leaves first. */
function answerAndHang(headers: Record<string, string>): UpstreamHandler {
  return (request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(200, headers);
      response.write('first chunk');
    });
  };
}

/** Reads the first chunk of the response body, then goes away. */
async function sendAndLeave(path: string): Promise<void> {
  const response = await within(harness.client.request({ method: 'GET', path, headers: { 'x-api-key': 'qg_secret' } }), WAIT_MS, `GET ${path}`);
  await new Promise<void>((resolve) => response.body.once('data', () => resolve()));
  response.body.destroy();
  await eventually(() => harness.outcomes.length > 0, WAIT_MS, 'the forward step to settle');
}

describe('the forward step settling a cost from the response (cost.from_response)', () => {
  it.each([
    ['lower', '1', -1],
    ['higher', '7', 5],
    ['zero', '0', -2],
    ['at the cap', '1000000000000', 1_000_000_000_000 - 2],
  ])('settles a reported header %s than the reserve: one adjustment by the difference, the header relayed as sent', async (_, units, delta) => {
    harness.upstream.configure({ reply: { headers: [['X-Usage-Units', units]], body: 'done' } });
    const answer = await send('/settling/x');
    expect(answer.status).toBe(200);
    expect(answer.headers['x-usage-units']).toBe(units);
    expect(harness.adjustments).toEqual([{ receipt: RECEIPT, delta }]);
    expect(harness.outcomes[0]!.exchange.settled).toEqual({ units: Number(units), source: 'reported' });
    expect(harness.refunds).toEqual([]);
  });

  it('makes no store call when the reported units equal the reserve', async () => {
    harness.upstream.configure({ reply: { headers: [['X-Usage-Units', '2']], body: 'done' } });
    await send('/settling/x');
    expect(harness.adjustments).toEqual([]);
    expect(harness.outcomes[0]!.exchange.settled).toEqual({ units: 2, source: 'reported' });
  });

  it('settles at the reserve (no store call) when the header is missing', async () => {
    harness.upstream.configure({ reply: { body: 'done' } });
    await send('/settling/x');
    expect(harness.adjustments).toEqual([]);
    expect(harness.outcomes[0]!.exchange.settled).toEqual({ units: 2, source: 'missing' });
  });

  it.each([['1.5'], ['-3'], ['+4'], ['0x10'], ['1e3'], ['4 units'], ['1000000000001'], ['99999999999999']])(
    'settles at the reserve (no store call) when the header is malformed: %s',
    async (units) => {
      harness.upstream.configure({ reply: { headers: [['X-Usage-Units', units]], body: 'done' } });
      await send('/settling/x');
      expect(harness.adjustments).toEqual([]);
      expect(harness.outcomes[0]!.exchange.settled).toEqual({ units: 2, source: 'malformed' });
    },
  );

  it('settles at the reserve when the header is sent twice', async () => {
    harness.upstream.configure({ reply: { headers: [['X-Usage-Units', '3'], ['X-Usage-Units', '4']], body: 'done' } });
    await send('/settling/x');
    expect(harness.adjustments).toEqual([]);
    expect(harness.outcomes[0]!.exchange.settled).toEqual({ units: 2, source: 'malformed' });
  });

  it('refunds the whole reserve for a 5xx named by refund_on, and settles nothing', async () => {
    harness.upstream.configure({ reply: { status: 503, headers: [['X-Usage-Units', '1']], body: 'down' } });
    await send('/settling/x');
    expect(harness.refunds).toEqual([RECEIPT]);
    expect(harness.adjustments).toEqual([]);
    expect(harness.outcomes[0]!.exchange.settled).toBeUndefined();
  });

  it('settles from a trailer at the end of a chunked response', async () => {
    harness.upstream.configure({ handler: answerWithTrailer('9') });
    const answer = await send('/settling-trailer/x');
    expect(answer.status).toBe(200);
    expect(harness.adjustments).toEqual([{ receipt: RECEIPT, delta: 7 }]);
    expect(harness.outcomes[0]!.exchange.settled).toEqual({ units: 9, source: 'reported' });
  });

  it('does not take a header for the trailer it is told to read', async () => {
    harness.upstream.configure({ reply: { headers: [['X-Usage-Units', '9']], body: 'done' } });
    await send('/settling-trailer/x');
    expect(harness.adjustments).toEqual([]);
    expect(harness.outcomes[0]!.exchange.settled).toEqual({ units: 2, source: 'missing' });
  });

  it('settles at a reported header when the client leaves before the response ends', async () => {
    harness.upstream.configure({ handler: answerAndHang({ 'X-Usage-Units': '5' }) });
    await sendAndLeave('/settling/x');
    expect(harness.outcomes[0]!.exchange.upstreamMs).toBeGreaterThanOrEqual(0);
    expect(harness.adjustments).toEqual([{ receipt: RECEIPT, delta: 3 }]);
    expect(harness.outcomes[0]!.exchange.settled).toEqual({ units: 5, source: 'reported' });
  });

  it('settles at the reserve when the client leaves before a trailer could arrive', async () => {
    harness.upstream.configure({ handler: answerAndHang({ trailer: 'X-Usage-Units' }) });
    await sendAndLeave('/settling-trailer/x');
    expect(harness.adjustments).toEqual([]);
    expect(harness.outcomes[0]!.exchange.settled).toEqual({ units: 2, source: 'missing' });
  });
});
