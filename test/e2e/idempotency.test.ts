import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectTestRedis, deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, testConfig, TEST_KEY, type TestGateway } from '../support/test-gateway.js';

/**
 * Idempotency-Key end to end (issue 10, section 1): the real server on an
 * ephemeral port, in front of a recording upstream, on the memory store and
 * on the real Redis. What reaches the upstream is counted, what the client
 * gets is compared byte for byte.
 */

const REDIS_URL = 'redis://127.0.0.1:6379';

const ROUTES = `
  - { name: fragile, path_prefix: /fragile, upstream: app, refund_on: [error, timeout, 5xx] }
  - { name: puts, path_prefix: /puts, upstream: app, idempotency_methods: [PUT] }
  - { name: api, path_prefix: /, upstream: app }`;

const IDEMPOTENCY = `
idempotency:
  max_body_bytes: 1000
  max_response_bytes: 2000`;

interface Sent {
  readonly method?: 'POST' | 'PATCH' | 'PUT' | 'GET';
  readonly key?: string;
  readonly body?: string | Buffer;
  readonly headers?: Record<string, string>;
}

async function send(gw: TestGateway, path: string, sent: Sent = {}) {
  const headers: Record<string, string> = { 'x-api-key': TEST_KEY, ...sent.headers };
  if (sent.key !== undefined) headers['idempotency-key'] = sent.key;
  const res = await request(`${gw.proxyUrl}${path}`, { method: sent.method ?? 'POST', headers, body: sent.body });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, text: body.toString('utf8') };
}

function codeOf(answer: { text: string }): unknown {
  return (JSON.parse(answer.text) as { code?: unknown }).code;
}

/** The minute window's remaining count after one more plain (keyless) request, which it charges. */
async function remainingAfterProbe(gw: TestGateway): Promise<string | string[] | undefined> {
  return (await send(gw, '/probe', { method: 'GET' })).headers['x-ratelimit-remaining-minute'];
}

function idempotencySuite(storeName: 'memory' | 'redis'): void {
  describe(`Idempotency-Key end to end (${storeName} store)`, () => {
    let upstream: RecordingUpstream;
    let gw: TestGateway;
    const prefixes: string[] = [];

    beforeAll(async () => {
      upstream = await startRecordingUpstream();
    });
    afterAll(async () => {
      await upstream.close();
      if (storeName === 'redis') {
        const client = await connectTestRedis(REDIS_URL);
        for (const prefix of prefixes) await deleteKeysWithPrefix(client, prefix);
        client.disconnect();
      }
    });
    beforeEach(async () => {
      upstream.configure({ reply: { body: 'ok' } });
      upstream.requests.length = 0;
      let store = '';
      if (storeName === 'redis') {
        const prefix = testKeyPrefix('idem');
        prefixes.push(prefix);
        store = `\nstore:\n  type: redis\n  redis: { url: "${REDIS_URL}", key_prefix: ${prefix}, command_timeout_ms: 2000 }`;
      }
      // The Redis store counts minutes on the test's clock too: no test straddles a real minute boundary.
      gw = await startTestGateway(testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES, extra: IDEMPOTENCY + store }), {
        redisOnTestClock: true,
      });
    });
    afterEach(async () => {
      await gw.gateway.shutdown();
    });

    it('forwards exactly one of ten concurrent duplicates; the nine others get 409 while it is in flight, then a replay', async () => {
      let answered = 0;
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      upstream.configure({
        handler: (req, res) => {
          req.resume();
          req.on('end', () => void held.then(() => res.writeHead(201, { 'content-type': 'text/plain' }).end('created')));
        },
      });
      // The upstream answers only once the nine duplicates have been answered by the gateway.
      const answers = await Promise.all(
        Array.from({ length: 10 }, () =>
          send(gw, '/orders', { key: 'order-1', body: '{"item":1}' }).then((answer) => {
            if (++answered === 9) release();
            return answer;
          }),
        ),
      );
      expect(upstream.requests).toHaveLength(1);
      const statuses = answers.map((answer) => answer.status).sort();
      expect(statuses).toEqual([201, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
      for (const refused of answers.filter((answer) => answer.status === 409)) {
        expect(codeOf(refused)).toBe('idempotency_key_in_use');
        expect(refused.headers['retry-after']).toBe('1');
        expect(refused.headers['content-type']).toBe('application/problem+json');
      }
      const replay = await send(gw, '/orders', { key: 'order-1', body: '{"item":1}' });
      expect(replay).toMatchObject({ status: 201, text: 'created' });
      expect(replay.headers['idempotency-replayed']).toBe('true');
      expect(upstream.requests).toHaveLength(1);
      // One charge for all eleven.
      expect(await remainingAfterProbe(gw)).toBe('1');
    });

    it('answers a repeat after completion from the store: same status, headers and body, never forwarded, never charged', async () => {
      const body = Buffer.from([0x7b, 0, 255, 10, 0x7d]);
      upstream.configure({
        reply: {
          status: 201,
          headers: [
            ['content-type', 'application/octet-stream'],
            ['x-order-id', 'o-17'],
            ['set-cookie', 'a=1'],
            ['set-cookie', 'b=2'],
          ],
          body: Buffer.from([1, 2, 0, 254]),
        },
      });
      const first = await send(gw, '/orders?draft=1', { key: 'order-17', body });
      expect(upstream.requests).toHaveLength(1);
      // The upstream got exactly the bytes the gateway read and hashed.
      expect(upstream.requests[0]!.body.equals(body)).toBe(true);
      expect(upstream.requests[0]!.url).toBe('/orders?draft=1');
      const replay = await send(gw, '/orders?draft=1', { key: 'order-17', body });
      expect(upstream.requests).toHaveLength(1);
      expect(replay.status).toBe(201);
      expect(replay.body.equals(Buffer.from([1, 2, 0, 254]))).toBe(true);
      expect(replay.headers['idempotency-replayed']).toBe('true');
      expect(first.headers['idempotency-replayed']).toBeUndefined();
      for (const name of ['content-type', 'x-order-id', 'set-cookie', 'ratelimit', 'ratelimit-policy', 'x-ratelimit-remaining-minute']) {
        expect(replay.headers[name], name).toEqual(first.headers[name]);
      }
      expect(replay.headers['set-cookie']).toEqual(['a=1', 'b=2']);
      expect(replay.headers['content-length']).toBe('4');
      expect(replay.headers['x-request-id']).toBeDefined();
      expect(replay.headers['x-request-id']).not.toBe(first.headers['x-request-id']);
      // The legacy header name reaches the same record.
      const legacy = await send(gw, '/orders?draft=1', { headers: { 'x-idempotency-key': 'order-17' }, body });
      expect(legacy.headers['idempotency-replayed']).toBe('true');
      expect(upstream.requests).toHaveLength(1);
      expect(await remainingAfterProbe(gw)).toBe('1');
    });

    it.each([
      ['another method', { method: 'PATCH' as const, path: '/orders?x=1', body: 'a' }],
      ['another path', { path: '/orders/2?x=1', body: 'a' }],
      ['another route', { path: '/fragile?x=1', body: 'a' }],
      ['another query', { path: '/orders?x=2', body: 'a' }],
      ['another body', { path: '/orders?x=1', body: 'b' }],
      ['no body', { path: '/orders?x=1', body: undefined }],
    ])('refuses the key on %s with 422 idempotency_key_reused, in flight or completed, charging nothing', async (_label, other) => {
      const first = await send(gw, '/orders?x=1', { key: 'k-1', body: 'a' });
      expect(first.status).toBe(200);
      const reused = await send(gw, other.path, { key: 'k-1', body: other.body, ...('method' in other ? { method: other.method } : {}) });
      expect(reused.status).toBe(422);
      expect(codeOf(reused)).toBe('idempotency_key_reused');
      expect(upstream.requests).toHaveLength(1);
      expect(await remainingAfterProbe(gw)).toBe('1');
    });

    it('forwards and answers a response over max_response_bytes in full, but does not keep it: a repeat is forwarded again', async () => {
      const big = Buffer.alloc(2001, 'x');
      upstream.configure({ reply: { body: big } });
      const first = await send(gw, '/orders', { key: 'big', body: 'a' });
      expect(first.body.equals(big)).toBe(true);
      const again = await send(gw, '/orders', { key: 'big', body: 'a' });
      expect(again.body.equals(big)).toBe(true);
      expect(again.headers['idempotency-replayed']).toBeUndefined();
      expect(upstream.requests).toHaveLength(2);
      // Each forwarded request was charged.
      expect(await remainingAfterProbe(gw)).toBe('0');
    });

    it('keeps a response of exactly max_response_bytes', async () => {
      upstream.configure({ reply: { body: Buffer.alloc(2000, 'y') } });
      await send(gw, '/orders', { key: 'edge', body: 'a' });
      const replay = await send(gw, '/orders', { key: 'edge', body: 'a' });
      expect(replay.headers['idempotency-replayed']).toBe('true');
      expect(replay.body.length).toBe(2000);
      expect(upstream.requests).toHaveLength(1);
    });

    it('releases the key after a 5xx, so a retry is forwarded; a refunding route also gives the charge back', async () => {
      upstream.configure({ reply: { status: 503, body: 'down' } });
      expect((await send(gw, '/fragile', { key: 'f-1', body: 'a' })).status).toBe(503);
      upstream.configure({ reply: { status: 200, body: 'fine now' } });
      const retried = await send(gw, '/fragile', { key: 'f-1', body: 'a' });
      expect(retried).toMatchObject({ status: 200, text: 'fine now' });
      expect(retried.headers['idempotency-replayed']).toBeUndefined();
      expect(upstream.requests).toHaveLength(2);
      // Refunded 503, charged retry, the probe: one left.
      expect(await remainingAfterProbe(gw)).toBe('1');
      // On a route without refund_on the 5xx is released but stays charged.
      upstream.configure({ reply: { status: 500, body: 'oops' } });
      expect((await send(gw, '/orders', { key: 'f-2', body: 'a' })).status).toBe(500);
      upstream.configure({ reply: { body: 'ok' } });
      // Released: decided afresh (and the minute is used up), not replayed nor 409.
      expect((await send(gw, '/orders', { key: 'f-2', body: 'a' })).status).toBe(429);
      expect(upstream.requests.map((seen) => seen.url)).toEqual(['/fragile', '/fragile', '/probe', '/orders']);
    });

    it('releases the key when the upstream cannot be reached (502)', async () => {
      upstream.configure({ handler: (_req, res) => res.socket?.destroy() });
      expect((await send(gw, '/orders', { key: 'gone', body: 'a' })).status).toBe(502);
      upstream.configure({ reply: { body: 'ok' } });
      const retried = await send(gw, '/orders', { key: 'gone', body: 'a' });
      expect(retried).toMatchObject({ status: 200, text: 'ok' });
      expect(upstream.requests).toHaveLength(2);
    });

    it('refuses a body over idempotency.max_body_bytes with 413 before charging, declared or chunked', async () => {
      const declared = await send(gw, '/orders', { key: 'large', body: Buffer.alloc(1001, 'z') });
      expect(declared.status).toBe(413);
      expect(codeOf(declared)).toBe('payload_too_large');
      const chunked = await request(`${gw.proxyUrl}/orders`, {
        method: 'POST',
        headers: { 'x-api-key': TEST_KEY, 'idempotency-key': 'large-chunked' },
        body: Readable.from(Array.from({ length: 11 }, () => Buffer.alloc(100, 'z'))),
      });
      expect(chunked.statusCode).toBe(413);
      await chunked.body.dump();
      expect(upstream.requests).toHaveLength(0);
      // Without a key the route's own (larger) limit applies.
      expect((await send(gw, '/orders', { body: Buffer.alloc(1001, 'z') })).status).toBe(200);
      expect(upstream.requests[0]!.bodyBytes).toBe(1001);
      expect(await remainingAfterProbe(gw)).toBe('1');
    });

    it('ignores the header on methods outside the route idempotency_methods: GET by default, POST on a PUT-only route', async () => {
      await send(gw, '/x', { method: 'GET', key: 'same' });
      await send(gw, '/x', { method: 'GET', key: 'x'.repeat(300) });
      await send(gw, '/puts/1', { key: 'same', body: 'a' });
      expect(upstream.requests).toHaveLength(3);
      expect((await send(gw, '/x', { method: 'GET', key: 'same' })).status).toBe(429);
      expect(upstream.requests).toHaveLength(3);
    });

    it('takes part on a route that lists PUT', async () => {
      await send(gw, '/puts/1', { method: 'PUT', key: 'p', body: 'a' });
      const replay = await send(gw, '/puts/1', { method: 'PUT', key: 'p', body: 'a' });
      expect(replay.headers['idempotency-replayed']).toBe('true');
      expect(upstream.requests).toHaveLength(1);
    });

    it('refuses a malformed Idempotency-Key with 400 before charging', async () => {
      const res = await send(gw, '/x', { key: 'x'.repeat(256), body: 'a' });
      expect(res.status).toBe(400);
      expect(codeOf(res)).toBe('idempotency_key_invalid');
      expect(upstream.requests).toHaveLength(0);
      expect(await remainingAfterProbe(gw)).toBe('2');
    });

    it('lets exactly one of ten POSTs to ten paths under one key through, and exactly 3 on a 3-a-minute plan under fresh keys', async () => {
      const oneKey = await Promise.all(Array.from({ length: 10 }, (_, i) => send(gw, `/work/${i}`, { key: 'one-key', body: 'a' })));
      expect(upstream.requests).toHaveLength(1);
      expect(oneKey.filter((answer) => answer.status === 200)).toHaveLength(1);
      expect(oneKey.filter((answer) => answer.status === 422 && codeOf(answer) === 'idempotency_key_reused')).toHaveLength(9);
      const freshKeys = await Promise.all(Array.from({ length: 10 }, (_, i) => send(gw, `/more/${i}`, { key: `fresh-${i}`, body: 'a' })));
      expect(upstream.requests).toHaveLength(3);
      expect(freshKeys.filter((answer) => answer.status === 200)).toHaveLength(2);
      expect(freshKeys.filter((answer) => answer.status === 429 && codeOf(answer) === 'rate_limited')).toHaveLength(8);
    });

    it('denies an exhausted subject flooding with fresh keys from the local deny cache, without a store call', async () => {
      for (let i = 0; i < 4; i++) await send(gw, '/x', { method: 'GET' });
      const flood = await Promise.all(Array.from({ length: 20 }, (_, i) => send(gw, '/x', { key: `flood-${i}`, body: 'a' })));
      expect(flood.every((answer) => answer.status === 429 && answer.headers['retry-after'] !== undefined)).toBe(true);
      expect(upstream.requests).toHaveLength(3);
      const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
      expect(metrics).toContain('quotagate_local_deny_cache_lookups_total{result="hit"} 20');
    });
  });
}

idempotencySuite('memory');
idempotencySuite('redis');
