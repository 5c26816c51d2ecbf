import { describe, expect, it } from 'vitest';
import { WAIT_MS, parseRawResponse, rawExchange, useForwarderHarness } from '../support/forwarder-harness.js';
import { eventually } from '../support/within.js';

describe('Forwarder: what crosses', () => {
  const harness = useForwarderHarness();

  describe('what reaches the upstream', () => {
    it('forwards method, path and query exactly as received, and end-to-end headers', async () => {
      harness.upstream.configure({
        reply: {
          status: 201,
          headers: [
            ['content-type', 'application/json'],
            ['set-cookie', 'a=1'],
            ['set-cookie', 'b=2'],
            ['x-upstream', 'yes'],
          ],
          body: '{"ok":true}',
        },
      });
      const path = '/v1/items//x/../y?q=a%2Fb&q=2&empty=&sp=%20';
      const response = await harness.front.client.request({
        method: 'PUT',
        path,
        headers: { 'x-custom': 'value', accept: 'application/json', 'content-type': 'text/plain' },
        body: 'payload',
      });
      expect(response.statusCode).toBe(201);
      expect(response.headers['set-cookie']).toEqual(['a=1', 'b=2']);
      expect(response.headers['x-upstream']).toBe('yes');
      expect(await response.body.text()).toBe('{"ok":true}');

      const [seen] = harness.upstream.requests;
      expect(seen?.method).toBe('PUT');
      expect(seen?.url).toBe(path);
      expect(seen?.headers['x-custom']).toBe('value');
      expect(seen?.headers['accept']).toBe('application/json');
      expect(seen?.headers['content-length']).toBe('7');
      expect(seen?.headers['host']).toBe(`127.0.0.1:${harness.upstream.port}`);
      expect(seen?.body.toString()).toBe('payload');
      await eventually(() => harness.front.outcomes.length === 1, WAIT_MS, 'the outcome');
      expect(harness.front.outcomes[0]).toMatchObject({ status: 201, aborted: false });
      expect(harness.front.outcomes[0]?.upstreamMs).toBeGreaterThanOrEqual(0);
    });

    it('answers HEAD with the upstream headers and no body', async () => {
      harness.upstream.configure({ reply: { headers: [['content-length', '5']] } });
      const response = await harness.front.client.request({ method: 'HEAD', path: '/head' });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-length']).toBe('5');
      expect(await response.body.text()).toBe('');
      expect(harness.upstream.requests[0]?.method).toBe('HEAD');
    });

    it('sends no body for a GET without framing headers', async () => {
      await (await harness.front.client.request({ method: 'GET', path: '/plain' })).body.text();
      const [seen] = harness.upstream.requests;
      expect(seen?.headers['content-length']).toBeUndefined();
      expect(seen?.headers['transfer-encoding']).toBeUndefined();
      expect(seen?.bodyBytes).toBe(0);
    });

    it('strips hop-by-hop request headers, including one named in Connection', async () => {
      const raw = await rawExchange(
        harness.front.port,
        [
          'GET /hop HTTP/1.1',
          'Host: harness.front.example',
          'Connection: close, X-Custom-Hop',
          'X-Custom-Hop: secret',
          'Keep-Alive: timeout=5',
          'TE: trailers',
          'Trailer: X-Checksum',
          'Proxy-Authorization: Basic Zm9vOmJhcg==',
          'Proxy-Connection: keep-alive',
          'Upgrade: websocket',
          'X-End-To-End: kept',
          '',
          '',
        ].join('\r\n'),
      );
      expect(parseRawResponse(raw).status).toBe(200);
      const seen = harness.upstream.requests[0]!.headers;
      for (const name of ['x-custom-hop', 'keep-alive', 'te', 'trailer', 'proxy-authorization', 'proxy-connection', 'upgrade']) {
        expect(seen[name], name).toBeUndefined();
      }
      expect(seen['x-end-to-end']).toBe('kept');
      expect(seen['x-forwarded-host']).toBe('harness.front.example');
    });

    it('never lets a client-sent x-quotagate-* header through, and adds the identity', async () => {
      harness.front.overrides = () => ({ identity: { subject: 'user-1', plan: 'pro', keyId: 'key-7' } });
      await (
        await harness.front.client.request({
          method: 'GET',
          path: '/who',
          headers: {
            'X-Quotagate-Subject': 'admin',
            'x-quotagate-plan': 'enterprise',
            'X-QUOTAGATE-KEY-ID': 'stolen',
            'X-QuotaGate-Debug': '1',
          },
        })
      ).body.text();
      const seen = harness.upstream.requests[0]!;
      expect(seen.headers['x-quotagate-subject']).toBe('user-1');
      expect(seen.headers['x-quotagate-plan']).toBe('pro');
      expect(seen.headers['x-quotagate-key-id']).toBe('key-7');
      expect(seen.headers['x-quotagate-debug']).toBeUndefined();
      const rawNames = seen.rawHeaders.filter((_, index) => index % 2 === 0).map((name) => name.toLowerCase());
      expect(rawNames.filter((name) => name.startsWith('x-quotagate-')).sort()).toEqual([
        'x-quotagate-key-id',
        'x-quotagate-plan',
        'x-quotagate-subject',
      ]);
    });

    it('sends no x-quotagate-* header at all without an identity', async () => {
      await (await harness.front.client.request({ method: 'GET', path: '/anon', headers: { 'x-quotagate-subject': 'admin' } })).body.text();
      expect(Object.keys(harness.upstream.requests[0]!.headers).filter((name) => name.startsWith('x-quotagate-'))).toEqual([]);
    });

    it('does not forward the header that carried the credential, nor X-API-Key ever', async () => {
      const headers = { 'x-api-key': 'qg_secret_key', authorization: 'Bearer other' };
      await (await harness.front.client.request({ method: 'GET', path: '/key', headers })).body.text();
      expect(harness.upstream.requests[0]!.headers['x-api-key']).toBeUndefined();
      expect(harness.upstream.requests[0]!.headers['authorization']).toBe('Bearer other');

      harness.front.overrides = () => ({ credentialHeaders: ['authorization'] });
      await (await harness.front.client.request({ method: 'GET', path: '/bearer', headers })).body.text();
      expect(harness.upstream.requests[1]!.headers['authorization']).toBeUndefined();
      expect(harness.upstream.requests[1]!.headers['x-api-key']).toBeUndefined();
    });
  });

  describe('X-Forwarded-*', () => {
    const spoofed = {
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.example',
      forwarded: 'for=6.6.6.6',
    };

    it('from an untrusted peer, replaces every claim with what the gateway saw', async () => {
      await (await harness.front.client.request({ method: 'GET', path: '/xff', headers: spoofed })).body.text();
      const seen = harness.upstream.requests[0]!.headers;
      expect(seen['x-forwarded-for']).toBe('127.0.0.1');
      expect(seen['x-forwarded-proto']).toBe('http');
      expect(seen['x-forwarded-host']).toBe(`127.0.0.1:${harness.front.port}`);
      expect(seen['forwarded']).toBeUndefined();
    });

    it('from a trusted peer, extends its chain and keeps its proto and host', async () => {
      await (await harness.trustingFront.client.request({ method: 'GET', path: '/xff', headers: spoofed })).body.text();
      const seen = harness.upstream.requests[0]!.headers;
      expect(seen['x-forwarded-for']).toBe('6.6.6.6, 127.0.0.1');
      expect(seen['x-forwarded-proto']).toBe('https');
      expect(seen['x-forwarded-host']).toBe('evil.example');
      expect(seen['forwarded']).toBe('for=6.6.6.6');
    });

    it('from a trusted peer without a chain, starts one with the peer', async () => {
      await (await harness.trustingFront.client.request({ method: 'GET', path: '/xff' })).body.text();
      const seen = harness.upstream.requests[0]!.headers;
      expect(seen['x-forwarded-for']).toBe('127.0.0.1');
      expect(seen['x-forwarded-proto']).toBe('http');
      expect(seen['x-forwarded-host']).toBe(`127.0.0.1:${harness.trustingFront.port}`);
    });
  });

  describe('what reaches the client', () => {
    it('strips hop-by-hop response headers, including one named in Connection', async () => {
      harness.upstream.configure({
        reply: {
          headers: [
            ['connection', 'keep-alive, x-upstream-hop'],
            ['x-upstream-hop', '1'],
            ['keep-alive', 'timeout=99, max=7'],
            ['proxy-authenticate', 'Basic realm="upstream"'],
            ['trailer', 'x-checksum'],
            ['x-end-to-end', 'kept'],
          ],
          chunks: ['a', 'b'],
        },
      });
      const raw = await rawExchange(harness.front.port, 'GET /hop HTTP/1.1\r\nHost: front\r\nConnection: close\r\n\r\n');
      const { status, headers } = parseRawResponse(raw);
      expect(status).toBe(200);
      for (const name of ['x-upstream-hop', 'keep-alive', 'proxy-authenticate', 'trailer']) {
        expect(headers[name], name).toBeUndefined();
      }
      expect(headers['connection']).toEqual(['close']);
      expect(headers['x-end-to-end']).toEqual(['kept']);
    });

    it("adds the gateway's headers, replacing upstream headers of the same name", async () => {
      harness.upstream.configure({ reply: { headers: [['ratelimit', '"upstream";r=1'], ['etag', '"v1"']] } });
      harness.front.overrides = () => ({
        responseHeaders: [
          ['ratelimit', '"hour";r=41;t=1260'],
          ['ratelimit-policy', '"hour";q=600;w=3600'],
        ],
      });
      const response = await harness.front.client.request({ method: 'GET', path: '/limited' });
      await response.body.text();
      expect(response.headers['ratelimit']).toBe('"hour";r=41;t=1260');
      expect(response.headers['ratelimit-policy']).toBe('"hour";q=600;w=3600');
      expect(response.headers['etag']).toBe('"v1"');
    });
  });
});
