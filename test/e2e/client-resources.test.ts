import { request } from 'undici';
import { afterEach, beforeAll, afterAll, beforeEach, describe, expect, it } from 'vitest';
import { openRawClient, statusLines } from '../support/raw-client.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, TEST_KEY, TEST_KEY_HASH, type TestGateway } from '../support/test-gateway.js';
import { eventually, within } from '../support/within.js';

/**
 * §4 of issue 10: no client can hold the gateway's resources. The real
 * gateway on ephemeral ports in front of recording upstreams, driven with
 * raw sockets where a client library would not misbehave; every limit is
 * configured short, and each test asserts what happened (status, a closed
 * socket, what the upstream saw, the in-flight gauge), never how long it took.
 */

const WAIT_MS = 5_000;

interface LimitsConfig {
  readonly proxy?: string;
  /** Extra fields of the `uploads` upstream (indented six spaces). */
  readonly uploads?: string;
}

function limitsConfig(app: RecordingUpstream, uploads: RecordingUpstream, options: LimitsConfig = {}): string {
  return `
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
proxy:
${options.proxy ?? '  headers_timeout_ms: 300'}
upstreams:
  app:
    url: ${app.origin}
    headers_timeout_ms: 5000
    body_timeout_ms: 5000
  uploads:
    url: ${uploads.origin}
    headers_timeout_ms: 5000
    body_timeout_ms: 5000
${options.uploads ?? ''}
routes:
  - { name: upload, path_prefix: /upload, upstream: uploads }
  - { name: api, path_prefix: /, upstream: app }
auth:
  api_keys:
    keys:
      - { id: test-key, hash: ${TEST_KEY_HASH}, subject: customer-1, plan: big }
plans:
  big: { limits: { minute: 1000 } }
shutdown:
  drain_timeout_ms: 1000
`;
}

async function inFlight(gw: TestGateway): Promise<number> {
  const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
  const line = metrics.split('\n').find((l) => l.startsWith('quotagate_requests_in_flight '));
  return Number(line?.split(' ')[1]);
}

/** The in-flight gauge once it reads 0, or its last reading after WAIT_MS (the handlers finish just after the answer is written). */
async function settledInFlight(gw: TestGateway): Promise<number> {
  const deadline = Date.now() + WAIT_MS;
  let gauge = await inFlight(gw);
  while (gauge !== 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    gauge = await inFlight(gw);
  }
  return gauge;
}

function getRequest(path: string, version = '1.1', extra = ''): string {
  return `GET ${path} HTTP/${version}\r\nHost: gw\r\nX-API-Key: ${TEST_KEY}\r\n${extra}\r\n`;
}

describe('client resources (memory store)', () => {
  let app: RecordingUpstream;
  let uploads: RecordingUpstream;
  let gw: TestGateway | undefined;

  beforeAll(async () => {
    app = await startRecordingUpstream();
    uploads = await startRecordingUpstream();
  });
  afterAll(async () => {
    await Promise.all([app.close(), uploads.close()]);
  });
  beforeEach(() => {
    for (const upstream of [app, uploads]) {
      upstream.requests.length = 0;
      upstream.configure({ reply: { headers: [['content-length', '2']], body: 'ok' } });
    }
  });
  afterEach(async () => {
    await gw?.gateway.shutdown();
    gw = undefined;
  });

  const start = async (options: LimitsConfig = {}): Promise<TestGateway> => (gw = await startTestGateway(limitsConfig(app, uploads, options)));

  /** POSTs `body` to /upload one byte every `intervalMs` on a raw connection; resolves with what came back once the gateway closed it. */
  const trickledUpload = async (proxyUrl: string, body: string, intervalMs: number): Promise<string> => {
    const client = await openRawClient(proxyUrl);
    await client.send(`POST /upload HTTP/1.1\r\nHost: gw\r\nX-API-Key: ${TEST_KEY}\r\nContent-Length: ${body.length}\r\n\r\n`);
    void client.trickle(body, intervalMs);
    return within(client.closed, WAIT_MS, 'the trickling upload to be cut');
  };

  /** The upload reached the upstream, was cut before its end, and nothing is left in flight. */
  const expectUploadCut = async (): Promise<void> => {
    await eventually(() => uploads.requests[0]?.closedEarly === true, WAIT_MS, 'the upstream request to be cut');
    expect(uploads.requests[0]!.complete).toBe(false);
    expect(await settledInFlight(gw!)).toBe(0);
  };

  describe('server timeouts', () => {
    it('answers 408 and closes a connection that never sends a byte, after headers_timeout_ms', async () => {
      const { proxyUrl } = await start({ proxy: '  headers_timeout_ms: 200' });
      const silent = await openRawClient(proxyUrl);
      const received = await within(silent.closed, WAIT_MS, 'the silent connection to be closed');
      expect(statusLines(received)).toEqual(['HTTP/1.1 408 Request Timeout']);
    });

    it('answers 408 and closes a connection whose headers trickle in past headers_timeout_ms', async () => {
      const { proxyUrl } = await start({ proxy: '  headers_timeout_ms: 200' });
      const slowloris = await openRawClient(proxyUrl);
      void slowloris.trickle(getRequest('/api/slow').slice(0, -2) + 'X-Padding: ' + 'a'.repeat(200), 20);
      const received = await within(slowloris.closed, WAIT_MS, 'the slowloris connection to be closed');
      expect(statusLines(received)).toEqual(['HTTP/1.1 408 Request Timeout']);
      expect(app.requests).toHaveLength(0);
    });

    it('closes an idle keep-alive connection after keep_alive_timeout_ms, having answered its request', async () => {
      const { proxyUrl } = await start({ proxy: '  headers_timeout_ms: 2000\n  keep_alive_timeout_ms: 50' });
      const client = await openRawClient(proxyUrl);
      await client.send(getRequest('/api/once'));
      const received = await within(client.closed, WAIT_MS, 'the idle keep-alive connection to be closed');
      expect(statusLines(received)).toEqual(['HTTP/1.1 200 OK']);
      expect(received).toContain('Keep-Alive: timeout=0');
      expect(app.requests.map((r) => r.url)).toEqual(['/api/once']);
    });

    it('answers 408 to a request whose whole receipt passes request_timeout_ms, and the upstream request is cut', async () => {
      const { proxyUrl } = await start({
        proxy: '  headers_timeout_ms: 200\n  request_timeout_ms: 400\n  body_idle_timeout_ms: 5000\n  body_min_bytes_per_s: 0',
      });
      const received = await trickledUpload(proxyUrl, 'x'.repeat(200), 20);
      expect(statusLines(received)).toEqual(['HTTP/1.1 408 Request Timeout']);
      await expectUploadCut();
    });
  });

  describe('request body pace', () => {
    it('answers 408 request_timeout to a body that stops mid-way, aborts the upstream request and frees its connection', async () => {
      const { proxyUrl } = await start({
        proxy: '  headers_timeout_ms: 2000\n  body_idle_timeout_ms: 200\n  body_min_bytes_per_s: 0',
        uploads: '    connections: 1\n    queue_timeout_ms: 2000',
      });
      const client = await openRawClient(proxyUrl);
      await client.send(`POST /upload/a HTTP/1.1\r\nHost: gw\r\nX-API-Key: ${TEST_KEY}\r\nContent-Length: 100\r\n\r\n` + 'x'.repeat(40));
      const received = await within(client.closed, WAIT_MS, 'the stalled upload to be answered');
      expect(statusLines(received)).toEqual(['HTTP/1.1 408 Request Timeout']);
      expect(received).toContain('"code":"request_timeout"');
      await eventually(() => uploads.requests[0]?.closedEarly === true, WAIT_MS, 'the upstream request to be aborted');
      expect(uploads.requests[0]!.bodyBytes).toBe(40);

      // The single connection to `uploads` is free again.
      const next = await request(`${proxyUrl}/upload/b`, { method: 'POST', headers: { 'x-api-key': TEST_KEY }, body: 'whole' });
      expect(next.statusCode).toBe(200);
      await next.body.text();
      expect(uploads.requests.map((r) => [r.url, r.body.toString()])).toEqual([
        ['/upload/a', 'x'.repeat(40)],
        ['/upload/b', 'whole'],
      ]);
      expect(await settledInFlight(gw!)).toBe(0);
    });

    it('holds the body of a request with an Idempotency-Key, read before the limit call, to the same pace: 408, nothing charged or forwarded', async () => {
      const { proxyUrl } = await start({ proxy: '  headers_timeout_ms: 2000\n  body_idle_timeout_ms: 200\n  body_min_bytes_per_s: 0' });
      const client = await openRawClient(proxyUrl);
      await client.send(
        `POST /upload/a HTTP/1.1\r\nHost: gw\r\nX-API-Key: ${TEST_KEY}\r\nIdempotency-Key: stalled\r\nContent-Length: 100\r\n\r\n` + 'x'.repeat(40),
      );
      const received = await within(client.closed, WAIT_MS, 'the stalled idempotent upload to be answered');
      expect(statusLines(received)).toEqual(['HTTP/1.1 408 Request Timeout']);
      expect(received).toContain('"code":"request_timeout"');
      expect(uploads.requests).toHaveLength(0);

      // The key was never taken and nothing was charged: the whole request goes through with it.
      const next = await request(`${proxyUrl}/upload/a`, {
        method: 'POST',
        headers: { 'x-api-key': TEST_KEY, 'idempotency-key': 'stalled' },
        body: 'x'.repeat(100),
      });
      expect(next.statusCode).toBe(200);
      expect(next.headers['x-ratelimit-remaining-minute']).toBe('999');
      await next.body.text();
      expect(uploads.requests.map((r) => r.body.length)).toEqual([100]);
      expect(await settledInFlight(gw!)).toBe(0);
    });

    it('answers 408 to a body that keeps trickling below body_min_bytes_per_s, though no pause reaches the idle timeout', async () => {
      const { proxyUrl } = await start({
        proxy: '  headers_timeout_ms: 2000\n  body_idle_timeout_ms: 300\n  body_min_bytes_per_s: 100',
      });
      const received = await trickledUpload(proxyUrl, 'y'.repeat(100), 40);
      expect(statusLines(received)).toEqual(['HTTP/1.1 408 Request Timeout']);
      expect(received).toContain('slower than 100 bytes per second');
      await expectUploadCut();
    });

    it('forwards a body that arrives in pauses shorter than the idle timeout at a rate above the minimum', async () => {
      const { proxyUrl } = await start({
        proxy: '  headers_timeout_ms: 2000\n  body_idle_timeout_ms: 1000\n  body_min_bytes_per_s: 10',
      });
      const client = await openRawClient(proxyUrl);
      await client.send(`POST /upload HTTP/1.1\r\nHost: gw\r\nX-API-Key: ${TEST_KEY}\r\nContent-Length: 6\r\nConnection: close\r\n\r\n`);
      await client.trickle('abcdef', 30);
      const received = await within(client.closed, WAIT_MS, 'the answer');
      expect(statusLines(received)).toEqual(['HTTP/1.1 200 OK']);
      expect(uploads.requests[0]!.body.toString()).toBe('abcdef');
    });
  });

  describe('connections', () => {
    it('closes connections beyond proxy.max_connections as they arrive, and accepts again once one closes', async () => {
      const { proxyUrl } = await start({ proxy: '  headers_timeout_ms: 5000\n  max_connections: 2' });
      const first = await openRawClient(proxyUrl);
      const second = await openRawClient(proxyUrl);
      await first.send('GET /api/1 HTTP/1.1\r\n');
      await second.send('GET /api/2 HTTP/1.1\r\n');
      const third = await openRawClient(proxyUrl);
      await third.send(getRequest('/api/3'));
      expect(await within(third.closed, WAIT_MS, 'the third connection to be closed')).toBe('');
      expect(app.requests).toHaveLength(0);

      first.destroy();
      await first.closed;
      const res = await within(
        (async () => {
          // The server learns of the close asynchronously; retry until a slot is free.
          for (;;) {
            const fourth = await openRawClient(proxyUrl);
            await fourth.send(getRequest('/api/4', '1.1', 'Connection: close\r\n'));
            const received = await fourth.closed;
            if (received !== '') return received;
          }
        })(),
        WAIT_MS,
        'a connection to be accepted again',
      );
      expect(statusLines(res)).toEqual(['HTTP/1.1 200 OK']);
      second.destroy();
    });

    it('answers both pipelined HTTP/1.0 keep-alive requests on one connection, and the in-flight gauge returns to 0', async () => {
      const { proxyUrl } = await start();
      const client = await openRawClient(proxyUrl);
      const keepAlive = 'Connection: keep-alive\r\n';
      await client.send(getRequest('/api/first', '1.0', keepAlive) + getRequest('/api/second', '1.0', keepAlive));
      const received = await client.waitFor((r) => statusLines(r).length === 2, WAIT_MS, 'both answers');
      expect(statusLines(received)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
      expect(app.requests.map((r) => r.url)).toEqual(['/api/first', '/api/second']);
      expect(await settledInFlight(gw!)).toBe(0);
      client.destroy();
    });

    it('returns the in-flight gauge to 0 when an HTTP/1.0 answer without a length ends a connection with a pipelined request behind it', async () => {
      app.configure({ reply: { chunks: ['o', 'k'] } });
      const { proxyUrl } = await start();
      const client = await openRawClient(proxyUrl);
      const keepAlive = 'Connection: keep-alive\r\n';
      await client.send(getRequest('/api/first', '1.0', keepAlive) + getRequest('/api/second', '1.0', keepAlive));
      const received = await within(client.closed, WAIT_MS, 'the connection to close after the first answer');
      expect(statusLines(received)).toEqual(['HTTP/1.1 200 OK']);
      await eventually(() => app.requests.length === 2, WAIT_MS, 'the second request to reach the upstream');
      expect(await settledInFlight(gw!)).toBe(0);
    });
  });

  describe('upstream connections', () => {
    it('answers 503 upstream_busy with Retry-After when no connection to the upstream comes free within queue_timeout_ms', async () => {
      uploads.configure({ handler: (req) => req.resume() });
      const { proxyUrl } = await start({ uploads: '    connections: 1\n    queue_timeout_ms: 100' });
      const hanging = openRawClient(proxyUrl).then(async (client) => {
        await client.send(getRequest('/upload/hang'));
        return client;
      });
      await eventually(() => uploads.requests.length === 1, WAIT_MS, 'the first request to hold the connection');
      const busy = await request(`${proxyUrl}/upload/second`, { headers: { 'x-api-key': TEST_KEY } });
      expect(busy.statusCode).toBe(503);
      expect(busy.headers['retry-after']).toBe('1');
      expect(busy.headers['content-type']).toBe('application/problem+json');
      expect(((await busy.body.json()) as { code: string }).code).toBe('upstream_busy');
      expect(uploads.requests.map((r) => r.url)).toEqual(['/upload/hang']);

      // The holder leaves: its slot comes back.
      uploads.configure({ reply: { headers: [['content-length', '2']], body: 'ok' } });
      (await hanging).destroy();
      await eventually(() => uploads.requests[0]!.closedEarly, WAIT_MS, 'the first upstream request to be aborted');
      const after = await request(`${proxyUrl}/upload/third`, { headers: { 'x-api-key': TEST_KEY } });
      expect(after.statusCode).toBe(200);
      await after.body.text();
    });

    it('serves a queued request once a connection comes free within queue_timeout_ms', async () => {
      uploads.configure({ reply: { headers: [['content-length', '2']], body: 'ok', delayHeadersMs: 100 } });
      const { proxyUrl } = await start({ uploads: '    connections: 1\n    queue_timeout_ms: 3000' });
      const [first, second] = await Promise.all(
        ['/upload/1', '/upload/2'].map((path) => request(`${proxyUrl}${path}`, { headers: { 'x-api-key': TEST_KEY } })),
      );
      expect([first!.statusCode, second!.statusCode]).toEqual([200, 200]);
      await Promise.all([first!.body.text(), second!.body.text()]);
      expect(uploads.requests.map((r) => r.url).sort()).toEqual(['/upload/1', '/upload/2']);
    });

    it('keeps serving other upstreams while slow uploads hold every connection of theirs', async () => {
      const { proxyUrl } = await start({
        proxy: '  headers_timeout_ms: 2000\n  body_idle_timeout_ms: 5000\n  body_min_bytes_per_s: 0',
        uploads: '    connections: 2\n    queue_timeout_ms: 100',
      });
      const slow = await Promise.all(
        [1, 2].map(async (n) => {
          const client = await openRawClient(proxyUrl);
          await client.send(`POST /upload/${n} HTTP/1.1\r\nHost: gw\r\nX-API-Key: ${TEST_KEY}\r\nContent-Length: 1000\r\n\r\nx`);
          return client;
        }),
      );
      await eventually(() => uploads.requests.length === 2, WAIT_MS, 'both slow uploads to reach the upstream');

      const other = await Promise.all(
        ['/api/a', '/api/b', '/api/c'].map((path) => request(`${proxyUrl}${path}`, { headers: { 'x-api-key': TEST_KEY } })),
      );
      expect(other.map((res) => res.statusCode)).toEqual([200, 200, 200]);
      await Promise.all(other.map((res) => res.body.text()));
      expect(app.requests.map((r) => r.url).sort()).toEqual(['/api/a', '/api/b', '/api/c']);

      const third = await request(`${proxyUrl}/upload/3`, { method: 'POST', headers: { 'x-api-key': TEST_KEY }, body: 'z' });
      expect(third.statusCode).toBe(503);
      expect(((await third.body.json()) as { code: string }).code).toBe('upstream_busy');
      expect(uploads.requests).toHaveLength(2);
      for (const client of slow) client.destroy();
    });
  });
});
