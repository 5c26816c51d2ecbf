import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { unusedPort } from '../support/ports.js';
import { startTestGateway, testConfig, TEST_KEY, UNKNOWN_KEY, type TestGateway } from '../support/test-gateway.js';
import { within } from '../support/within.js';

const API_ROUTES = `
  - { name: bad-path-probe, path_prefix: /never-matched-prefix, upstream: app }
  - { name: small-body, path_prefix: /api/upload, upstream: app, max_body_bytes: 1024 }
  - { name: heavy, path_prefix: /api/heavy, upstream: app, cost: 2 }
  - { name: hidden, path_prefix: /api/hidden, upstream: app, hide_headers: true }
  - { name: api, path_prefix: /api, upstream: app }
  - { name: public, path_prefix: /public, upstream: app, auth: none }`;

/** A GET whose path is sent exactly as given. */
function rawGet(origin: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${origin}/`, { path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('gateway end to end', () => {
  let upstream: RecordingUpstream;
  let gw: TestGateway;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
  });
  afterAll(async () => {
    await upstream.close();
  });
  beforeEach(async () => {
    upstream.requests.length = 0;
    upstream.configure({ reply: { body: 'ok' } });
    gw = await startTestGateway(testConfig({ upstreamOrigin: upstream.origin, routes: API_ROUTES }));
  });
  afterEach(async () => {
    await gw.gateway.shutdown();
  });

  const withKey = { 'x-api-key': TEST_KEY };

  it('forwards method, path, query, headers and body, and returns the upstream answer with rate-limit headers', async () => {
    upstream.configure({
      reply: { status: 201, headers: [['x-upstream', 'yes'], ['content-type', 'text/plain']], body: 'created' },
    });
    const res = await request(`${gw.proxyUrl}/api/items/42?q=a%20b&x=1&x=2`, {
      method: 'POST',
      headers: { ...withKey, 'content-type': 'application/json', 'x-custom': 'kept' },
      body: '{"name":"widget"}',
    });
    expect(res.statusCode).toBe(201);
    expect(await res.body.text()).toBe('created');
    expect(res.headers['x-upstream']).toBe('yes');
    expect(res.headers['ratelimit']).toBe('"minute";r=2;t=60, "hour";r=99;t=1800');
    expect(res.headers['ratelimit-policy']).toBe('"minute";q=3;w=60, "hour";q=100;w=3600');

    const seen = upstream.requests[0]!;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/api/items/42?q=a%20b&x=1&x=2');
    expect(seen.headers['x-custom']).toBe('kept');
    expect(seen.headers['content-type']).toBe('application/json');
    expect(seen.body.toString()).toBe('{"name":"widget"}');
    expect(seen.headers['x-quotagate-subject']).toBe('customer-1');
    expect(seen.headers['x-quotagate-plan']).toBe('small');
    expect(seen.headers['x-quotagate-key-id']).toBe('test-key');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe(new URL(gw.proxyUrl).host);
    expect(seen.headers['x-api-key']).toBeUndefined();
  });

  it('streams a large request body up and a chunked response body down, byte for byte', async () => {
    const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(64 * 1024, i));
    const sent = Buffer.concat(chunks);
    const responseChunks = Array.from({ length: 20 }, (_, i) => Buffer.alloc(32 * 1024, 255 - i));
    upstream.configure({ reply: { chunks: responseChunks } });
    const res = await request(`${gw.proxyUrl}/api/stream`, {
      method: 'PUT',
      headers: withKey,
      body: Readable.from(chunks),
    });
    const received = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).toBe(200);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(sha(received)).toBe(sha(Buffer.concat(responseChunks)));
    expect(upstream.requests[0]!.bodyBytes).toBe(sent.length);
    expect(sha(upstream.requests[0]!.body)).toBe(sha(sent));
  });

  it('accepts the key as a bearer token and does not forward it', async () => {
    const res = await request(`${gw.proxyUrl}/api/x`, { headers: { authorization: `Bearer ${TEST_KEY}` } });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(upstream.requests[0]!.headers.authorization).toBeUndefined();
    expect(upstream.requests[0]!.headers['x-quotagate-subject']).toBe('customer-1');
  });

  it('strips hop-by-hop headers in both directions, including those named in Connection', async () => {
    upstream.configure({
      handler: (req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(200, {
            connection: 'x-upstream-hop',
            'x-upstream-hop': 'secret',
            'keep-alive': 'timeout=5',
            'x-upstream-end': 'kept',
          });
          res.end('done');
        });
      },
    });
    const answer = await within(
      new Promise<{ headers: Record<string, unknown> }>((resolve, reject) => {
        const req = httpRequest(`${gw.proxyUrl}/api/hops`, {
          headers: {
            ...withKey,
            connection: 'keep-alive, x-client-hop',
            'x-client-hop': 'secret',
            'keep-alive': 'timeout=5',
            'proxy-authorization': 'Basic abc',
            te: 'trailers',
            'x-client-end': 'kept',
          },
        });
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve({ headers: res.headers }));
        });
        req.on('error', reject);
        req.end();
      }),
      5000,
      'the hop-by-hop exchange',
    );
    const seen = upstream.requests[0]!.headers;
    expect(seen['x-client-hop']).toBeUndefined();
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(seen['te']).toBeUndefined();
    expect(seen['x-client-end']).toBe('kept');
    expect(answer.headers['x-upstream-hop']).toBeUndefined();
    expect(answer.headers['x-upstream-end']).toBe('kept');
  });

  it('never lets client-sent identity headers reach the upstream', async () => {
    const res = await request(`${gw.proxyUrl}/api/x`, {
      headers: {
        ...withKey,
        'x-quotagate-subject': 'someone-else',
        'x-quotagate-plan': 'enterprise',
        'x-quotagate-key-id': 'forged',
        'x-quotagate-admin': 'true',
      },
    });
    await res.body.dump();
    const seen = upstream.requests[0]!;
    expect(seen.headers['x-quotagate-subject']).toBe('customer-1');
    expect(seen.headers['x-quotagate-plan']).toBe('small');
    expect(seen.headers['x-quotagate-key-id']).toBe('test-key');
    expect(seen.headers['x-quotagate-admin']).toBeUndefined();
    const identityValues = seen.rawHeaders.filter((_, i) => i % 2 === 0 && /^x-quotagate-/i.test(seen.rawHeaders[i]!));
    expect(identityValues).toHaveLength(3);
  });

  it('counts down the headers to the limit, then answers 429 with Retry-After and a quota-exceeded problem', async () => {
    const seen: Array<{ status: number; remaining: unknown; ratelimit: unknown }> = [];
    for (let i = 0; i < 4; i++) {
      const res = await request(`${gw.proxyUrl}/api/x`, { headers: withKey });
      seen.push({ status: res.statusCode, remaining: res.headers['x-ratelimit-remaining'], ratelimit: res.headers['ratelimit'] });
      if (res.statusCode === 429) {
        expect(res.headers['retry-after']).toBe('60');
        expect(res.headers['content-type']).toBe('application/problem+json');
        expect(await res.body.json()).toEqual({
          type: 'https://iana.org/assignments/http-problem-types#quota-exceeded',
          title: 'Request cannot be satisfied as assigned quota has been exceeded',
          status: 429,
          code: 'rate_limited',
          detail: 'The minute limit of plan "small" is reached; retry after 60 s.',
          'violated-policies': ['minute'],
          limit: 3,
          remaining: 0,
          reset: 60,
          plan: 'small',
        });
      } else {
        await res.body.dump();
      }
    }
    expect(seen).toEqual([
      { status: 200, remaining: '2', ratelimit: '"minute";r=2;t=60, "hour";r=99;t=1800' },
      { status: 200, remaining: '1', ratelimit: '"minute";r=1;t=60, "hour";r=98;t=1800' },
      { status: 200, remaining: '0', ratelimit: '"minute";r=0;t=60, "hour";r=97;t=1800' },
      { status: 429, remaining: '0', ratelimit: '"minute";r=0;t=60, "hour";r=97;t=1800' },
    ]);
    expect(upstream.requests).toHaveLength(3);
    // The next minute admits again: the window is calendar-aligned, not sliding.
    gw.clock.advance(60_000);
    const next = await request(`${gw.proxyUrl}/api/x`, { headers: withKey });
    await next.body.dump();
    expect(next.statusCode).toBe(200);
    expect(next.headers['ratelimit']).toBe('"minute";r=2;t=60, "hour";r=96;t=1740');
  });

  it('charges the route cost and hides headers where the route says so', async () => {
    const heavy = await request(`${gw.proxyUrl}/api/heavy`, { headers: withKey });
    await heavy.body.dump();
    expect(heavy.headers['x-ratelimit-remaining-minute']).toBe('1');
    const hidden = await request(`${gw.proxyUrl}/api/hidden`, { headers: withKey });
    await hidden.body.dump();
    expect(hidden.statusCode).toBe(200);
    expect(Object.keys(hidden.headers).filter((h) => /ratelimit/i.test(h))).toEqual([]);
    const denied = await request(`${gw.proxyUrl}/api/heavy`, { headers: withKey });
    expect(denied.statusCode).toBe(429);
    expect(denied.headers['retry-after']).toBe('60');
    await denied.body.dump();
  });

  it.each([
    ['no key', {}, 'missing_credentials'],
    ['a malformed key', { 'x-api-key': 'qg_not-a-key' }, 'malformed_api_key'],
    ['a key with a bad checksum', { 'x-api-key': `${TEST_KEY.slice(0, -1)}X` }, 'malformed_api_key'],
    ['an unknown key', { 'x-api-key': UNKNOWN_KEY }, 'invalid_api_key'],
  ])('answers %s with 401 %s and forwards nothing', async (_, headers, code) => {
    const res = await request(`${gw.proxyUrl}/api/x`, { headers });
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(await res.body.json()).toMatchObject({ status: 401, code, type: `https://quotagate.dev/problems/${code}` });
    expect(upstream.requests).toHaveLength(0);
  });

  it('answers an unmatched path 404 route_not_found and never forwards it', async () => {
    const res = await request(`${gw.proxyUrl}/elsewhere`, { headers: withKey });
    expect(res.statusCode).toBe(404);
    expect(await res.body.json()).toMatchObject({ status: 404, code: 'route_not_found' });
    expect(upstream.requests).toHaveLength(0);
  });

  it.each(['/public/../api/x', '/public/%2e%2e/api/x', '/api/%zz'])(
    'refuses the ambiguous path %s with 400 and forwards nothing',
    async (path) => {
      // node:http sends the path verbatim; a URL-parsing client would resolve the dots first.
      const res = await within(rawGet(gw.proxyUrl, path, withKey), 5000, `GET ${path}`);
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ status: 400, code: 'bad_request' });
      expect(upstream.requests).toHaveLength(0);
    },
  );

  it('routes on the decoded path the upstream will see', async () => {
    const res = await request(`${gw.proxyUrl}/%61pi/x`, {});
    expect(res.statusCode).toBe(401);
    await res.body.dump();
  });

  it('answers 413 for a declared body over the limit, before charging', async () => {
    const res = await request(`${gw.proxyUrl}/api/upload`, {
      method: 'POST',
      headers: { ...withKey, 'content-length': '2048' },
      body: Buffer.alloc(2048),
    });
    expect(res.statusCode).toBe(413);
    expect(await res.body.json()).toMatchObject({ status: 413, code: 'payload_too_large' });
    expect(upstream.requests).toHaveLength(0);
    const after = await request(`${gw.proxyUrl}/api/x`, { headers: withKey });
    await after.body.dump();
    expect(after.headers['x-ratelimit-remaining-minute']).toBe('2');
  });

  it('answers 413 for a chunked body that grows over the limit', async () => {
    upstream.configure({ handler: (req) => req.resume() });
    const res = await request(`${gw.proxyUrl}/api/upload`, {
      method: 'POST',
      headers: withKey,
      body: Readable.from([Buffer.alloc(800), Buffer.alloc(800)]),
    });
    expect(res.statusCode).toBe(413);
    expect(await res.body.json()).toMatchObject({ code: 'payload_too_large' });
  });

  it('counts auth: none callers by peer address, ignoring X-Forwarded-For from untrusted peers', async () => {
    const statuses: number[] = [];
    for (const spoofed of ['1.1.1.1', '2.2.2.2', '3.3.3.3']) {
      const res = await request(`${gw.proxyUrl}/public/page`, { headers: { 'x-forwarded-for': spoofed } });
      statuses.push(res.statusCode);
      await res.body.dump();
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(upstream.requests.map((r) => r.headers['x-forwarded-for'])).toEqual(['127.0.0.1', '127.0.0.1']);
    expect(upstream.requests[0]!.headers['x-quotagate-plan']).toBe('anonymous');
  });
});

describe('gateway end to end: upstream failures', () => {
  it('answers 502 upstream_unavailable with the rate-limit headers when the upstream is down', async () => {
    const port = await unusedPort();
    const gw = await startTestGateway(
      testConfig({ upstreamOrigin: `http://127.0.0.1:${port}`, routes: '  - { name: api, path_prefix: /, upstream: app }' }),
    );
    try {
      const res = await request(`${gw.proxyUrl}/x`, { headers: { 'x-api-key': TEST_KEY } });
      expect(res.statusCode).toBe(502);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(res.headers['x-ratelimit-remaining-minute']).toBe('2');
      expect(await res.body.json()).toMatchObject({ status: 502, code: 'upstream_unavailable' });
    } finally {
      await gw.gateway.shutdown();
    }
  });

  it('answers 504 upstream_timeout when the upstream sends no headers in time', async () => {
    const upstream = await startRecordingUpstream({ reply: { delayHeadersMs: 1500, body: 'late' } });
    const gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: '  - { name: api, path_prefix: /, upstream: app }',
        headersTimeoutMs: 200,
      }),
    );
    try {
      const res = await request(`${gw.proxyUrl}/slow`, { headers: { 'x-api-key': TEST_KEY } });
      expect(res.statusCode).toBe(504);
      expect(await res.body.json()).toMatchObject({ status: 504, code: 'upstream_timeout' });
    } finally {
      await gw.gateway.shutdown();
      await upstream.close();
    }
  });
});

describe('admin listener', () => {
  it('serves liveness, readiness and metrics without subjects or keys as labels', async () => {
    const upstream = await startRecordingUpstream();
    const gw = await startTestGateway(
      testConfig({ upstreamOrigin: upstream.origin, routes: '  - { name: api, path_prefix: /, upstream: app }' }),
    );
    try {
      const denied = await request(`${gw.proxyUrl}/x`, { headers: { 'x-api-key': UNKNOWN_KEY } });
      await denied.body.dump();
      const allowed = await request(`${gw.proxyUrl}/x`, { headers: { 'x-api-key': TEST_KEY } });
      await allowed.body.dump();
      const health = await request(`${gw.adminUrl}/healthz`);
      expect(health.statusCode).toBe(200);
      expect(await health.body.json()).toEqual({ status: 'ok' });
      const ready = await request(`${gw.adminUrl}/readyz`);
      expect(ready.statusCode).toBe(200);
      expect(await ready.body.json()).toEqual({ status: 'ready', store: 'up' });
      const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
      expect(metrics).toContain('quotagate_requests_total{route="api",plan="small",outcome="forwarded"} 1');
      expect(metrics).toContain('quotagate_requests_total{route="api",plan="",outcome="invalid_api_key"} 1');
      expect(metrics).toContain('quotagate_auth_failures_total{reason="unknown"} 1');
      expect(metrics).toMatch(/quotagate_upstream_duration_seconds_count\{route="api"\} 1/);
      expect(metrics).toMatch(/quotagate_request_duration_seconds_count\{route="api",outcome="forwarded"\} 1/);
      expect(metrics).not.toContain('customer-1');
      expect(metrics).not.toContain(TEST_KEY);
      expect(metrics).not.toContain(UNKNOWN_KEY);
    } finally {
      await gw.gateway.shutdown();
      await upstream.close();
    }
  });
});

describe('header sets', () => {
  it('sends only the IETF pair when the legacy families are turned off, on answers and denials alike', async () => {
    const upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    const gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: '  - { name: api, path_prefix: /api, upstream: app }',
        plans: '  small: { limits: { minute: 1 } }',
        extra: 'headers: { legacy: false, legacy_per_window: false }',
      }),
    );
    try {
      const headersOf = async () => {
        const res = await request(`${gw.proxyUrl}/api/x`, { headers: { 'x-api-key': TEST_KEY } });
        await res.body.text();
        return { status: res.statusCode, headers: res.headers };
      };
      const admitted = await headersOf();
      const denied = await headersOf();
      expect([admitted.status, denied.status]).toEqual([200, 429]);
      for (const { headers } of [admitted, denied]) {
        expect(headers['ratelimit-policy']).toBe('"minute";q=1;w=60');
        expect(Object.keys(headers).filter((name) => name.startsWith('x-ratelimit'))).toEqual([]);
      }
      expect(admitted.headers['ratelimit']).toBe('"minute";r=0;t=60');
      expect(denied.headers['retry-after']).toBe('60');
    } finally {
      await gw.gateway.shutdown();
      await upstream.close();
    }
  });
});
