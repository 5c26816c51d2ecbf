import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { WAIT_MS, MB, deferred, sha256, useForwarderHarness } from '../support/forwarder-harness.js';
import { eventually, within } from '../support/within.js';

describe('Forwarder: streaming', () => {
  const harness = useForwarderHarness();

  describe('streaming', () => {
    it('streams a chunked request body of several MB to the upstream as it arrives', async () => {
      const payload = randomBytes(6 * MB);
      const firstChunk = 64 * 1024;
      async function* body(): AsyncGenerator<Buffer> {
        yield payload.subarray(0, firstChunk);
        // Buffering the whole body before forwarding would deadlock here.
        await eventually(() => (harness.upstream.requests[0]?.bodyBytes ?? 0) > 0, WAIT_MS, 'the first bytes upstream');
        for (let offset = firstChunk; offset < payload.length; offset += 256 * 1024) {
          yield payload.subarray(offset, Math.min(offset + 256 * 1024, payload.length));
        }
      }
      const response = await harness.front.client.request({ method: 'POST', path: '/upload', body: Readable.from(body()) });
      expect(response.statusCode).toBe(200);
      await response.body.text();
      const seen = harness.upstream.requests[0]!;
      expect(seen.headers['transfer-encoding']).toBe('chunked');
      expect(seen.complete).toBe(true);
      expect(seen.bodyBytes).toBe(payload.length);
      expect(sha256(seen.body)).toBe(sha256(payload));
    });

    it('streams a request body with Content-Length through unchanged', async () => {
      const payload = randomBytes(3 * MB);
      const response = await harness.front.client.request({ method: 'POST', path: '/upload', body: payload });
      await response.body.text();
      const seen = harness.upstream.requests[0]!;
      expect(seen.headers['content-length']).toBe(String(payload.length));
      expect(sha256(seen.body)).toBe(sha256(payload));
    });

    it('streams a response body of several MB back as it is produced', async () => {
      const payload = randomBytes(6 * MB);
      const firstChunk = 64 * 1024;
      const clientGotFirstBytes = deferred();
      harness.upstream.configure({
        handler: (_request, response) => {
          response.writeHead(200, { 'content-type': 'application/octet-stream' });
          response.write(payload.subarray(0, firstChunk));
          // Buffering the whole response before sending would deadlock here.
          void within(clientGotFirstBytes.promise, WAIT_MS, 'the client to see the first bytes').then(
            () => response.end(payload.subarray(firstChunk)),
            () => response.destroy(),
          );
        },
      });
      const response = await harness.front.client.request({ method: 'GET', path: '/download' });
      const received: Buffer[] = [];
      for await (const chunk of response.body) {
        received.push(chunk as Buffer);
        clientGotFirstBytes.resolve();
      }
      expect(sha256(Buffer.concat(received))).toBe(sha256(payload));
    });
  });

  describe('upstreams that answer without reading the body', () => {
    it('passes the early answer on and keeps serving', async () => {
      harness.upstream.configure({
        handler: (_request, response) => {
          response.writeHead(400, { 'content-type': 'text/plain' });
          response.end('rejected early');
        },
      });
      const response = await harness.front.client.request({ method: 'POST', path: '/early', body: randomBytes(2 * MB) });
      expect(response.statusCode).toBe(400);
      expect(await response.body.text()).toBe('rejected early');
      await eventually(() => harness.front.outcomes.length === 1, WAIT_MS, 'the outcome');
      expect(harness.front.outcomes[0]).toMatchObject({ status: 400, aborted: false });

      harness.upstream.configure({});
      const next = await harness.front.client.request({ method: 'POST', path: '/after', body: 'x' });
      expect(next.statusCode).toBe(200);
      await next.body.text();
    });
  });
});
