import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { WAIT_MS, deferred, useForwarderHarness } from '../support/forwarder-harness.js';
import { eventually, within } from '../support/within.js';

describe('Forwarder: failures and clients that leave', () => {
  const harness = useForwarderHarness();

  describe('failures before the response starts', () => {
    it('answers 502 upstream_unavailable when nothing listens on the upstream port', async () => {
      harness.front.overrides = () => ({ upstream: 'down' });
      const response = await harness.front.client.request({ method: 'GET', path: '/down' });
      expect(response.statusCode).toBe(502);
      expect(await response.body.json()).toEqual({ code: 'upstream_unavailable' });
    });

    it('answers 502 while the request body is still arriving, and closes that connection', async () => {
      harness.front.overrides = () => ({ upstream: 'down' });
      const answered = deferred();
      async function* body(): AsyncGenerator<Buffer> {
        yield Buffer.alloc(1024, 1);
        await within(answered.promise, WAIT_MS, 'the answer').catch(() => {});
      }
      const response = await harness.front.client.request({ method: 'POST', path: '/down', body: Readable.from(body()) });
      answered.resolve();
      expect(response.statusCode).toBe(502);
      expect(response.headers['connection']).toBe('close');
      expect(await response.body.json()).toEqual({ code: 'upstream_unavailable' });
    });

    it('answers 504 upstream_timeout when the upstream is slower than headers_timeout_ms', async () => {
      harness.upstream.configure({ reply: { delayHeadersMs: 3_000 } });
      harness.front.overrides = () => ({ upstream: 'slow' });
      const response = await harness.front.client.request({ method: 'GET', path: '/slow' });
      expect(response.statusCode).toBe(504);
      expect(await response.body.json()).toEqual({ code: 'upstream_timeout' });
      await eventually(() => harness.upstream.requests[0]?.closedEarly === true, WAIT_MS, 'the upstream request to be dropped');
    });

    it('answers 413 by Content-Length without contacting the upstream', async () => {
      harness.front.overrides = () => ({ maxBodyBytes: 1024 });
      const response = await harness.front.client.request({ method: 'POST', path: '/big', body: Buffer.alloc(1025) });
      expect(response.statusCode).toBe(413);
      expect(response.headers['connection']).toBe('close');
      expect(await response.body.json()).toEqual({ code: 'payload_too_large' });
      expect(harness.upstream.requests).toEqual([]);
    });

    it('forwards a body of exactly the limit', async () => {
      harness.front.overrides = () => ({ maxBodyBytes: 1024 });
      const response = await harness.front.client.request({ method: 'POST', path: '/exact', body: Buffer.alloc(1024) });
      expect(response.statusCode).toBe(200);
      await response.body.text();
      expect(harness.upstream.requests[0]?.bodyBytes).toBe(1024);
    });

    it('answers 413 when a chunked body grows past the limit, and the upstream never gets more than the limit', async () => {
      harness.front.overrides = () => ({ maxBodyBytes: 1024 });
      harness.upstream.configure({ handler: () => {} });
      async function* body(): AsyncGenerator<Buffer> {
        yield Buffer.alloc(1000, 1);
        await eventually(() => (harness.upstream.requests[0]?.bodyBytes ?? 0) > 0, WAIT_MS, 'the first bytes upstream');
        for (let i = 2; i <= 4; i++) yield Buffer.alloc(1000, i);
      }
      const response = await harness.front.client.request({ method: 'POST', path: '/chunked-big', body: Readable.from(body()) });
      expect(response.statusCode).toBe(413);
      expect(response.headers['connection']).toBe('close');
      expect(await response.body.json()).toEqual({ code: 'payload_too_large' });
      await eventually(() => harness.upstream.requests[0]!.closedEarly, WAIT_MS, 'the upstream request to be aborted');
      expect(harness.upstream.requests[0]!.bodyBytes).toBe(1000);
      expect(harness.upstream.requests[0]!.complete).toBe(false);
    });
  });

  describe('failures after the response started, and clients that leave', () => {
    it('aborts the upstream request when the client leaves while waiting for headers', async () => {
      harness.upstream.configure({ handler: () => {} });
      const abort = new AbortController();
      const pending = harness.front.client.request({ method: 'GET', path: '/hang', signal: abort.signal });
      pending.catch(() => {});
      await eventually(() => harness.upstream.requests.length === 1, WAIT_MS, 'the request upstream');
      abort.abort();
      await expect(pending).rejects.toThrow();
      await eventually(() => harness.front.outcomes.length === 1, WAIT_MS, 'the outcome');
      expect(harness.front.outcomes[0]).toMatchObject({ status: 0, aborted: true, abortCause: 'client_closed' });
      await eventually(() => harness.upstream.requests[0]!.closedEarly, WAIT_MS, 'the upstream request to be aborted');

      // The gateway is still serving.
      harness.upstream.configure({});
      expect((await harness.front.client.request({ method: 'GET', path: '/after' })).statusCode).toBe(200);
    });

    it('aborts the upstream request when the client leaves in the middle of its body', async () => {
      harness.upstream.configure({ handler: () => {} });
      const abort = new AbortController();
      async function* body(): AsyncGenerator<Buffer> {
        yield Buffer.alloc(64 * 1024, 1);
        await new Promise((resolve) => abort.signal.addEventListener('abort', resolve));
      }
      const pending = harness.front.client.request({ method: 'POST', path: '/upload-hang', body: Readable.from(body()), signal: abort.signal });
      pending.catch(() => {});
      await eventually(() => (harness.upstream.requests[0]?.bodyBytes ?? 0) > 0, WAIT_MS, 'body bytes upstream');
      abort.abort();
      await expect(pending).rejects.toThrow();
      await eventually(() => harness.front.outcomes.length === 1, WAIT_MS, 'the outcome');
      expect(harness.front.outcomes[0]).toMatchObject({ aborted: true, abortCause: 'client_closed' });
      await eventually(() => harness.upstream.requests[0]!.closedEarly, WAIT_MS, 'the upstream request to be aborted');
      expect(harness.upstream.requests[0]!.complete).toBe(false);
    });

    it('aborts the upstream response when the client leaves while it streams', async () => {
      harness.upstream.configure({ reply: { chunks: [Buffer.alloc(1024, 1), Buffer.alloc(1024, 2)], chunkDelayMs: 10_000 } });
      const abort = new AbortController();
      const response = await harness.front.client.request({ method: 'GET', path: '/stream', signal: abort.signal });
      const reading = (async () => {
        for await (const _chunk of response.body) abort.abort();
      })();
      await expect(within(reading, WAIT_MS, 'the client to stop reading')).rejects.toThrow();
      await eventually(() => harness.front.outcomes.length === 1, WAIT_MS, 'the outcome');
      expect(harness.front.outcomes[0]).toMatchObject({ status: 200, aborted: true, abortCause: 'client_closed' });
      await eventually(() => harness.upstream.requests[0]!.closedEarly, WAIT_MS, 'the upstream response to be dropped');
    });

    it('cuts the client connection when the upstream breaks in the middle of its response', async () => {
      harness.upstream.configure({
        handler: (request, response) => {
          request.resume();
          response.writeHead(200, { 'content-length': '10000' });
          response.write(Buffer.alloc(1000));
          setImmediate(() => response.socket?.destroy());
        },
      });
      const response = await harness.front.client.request({ method: 'GET', path: '/broken' });
      expect(response.statusCode).toBe(200);
      await expect(within(response.body.arrayBuffer(), WAIT_MS, 'the body')).rejects.toMatchObject({ code: 'UND_ERR_SOCKET' });
      await eventually(() => harness.front.outcomes.length === 1, WAIT_MS, 'the outcome');
      expect(harness.front.outcomes[0]).toMatchObject({ status: 200, aborted: true, abortCause: 'upstream_failed' });
    });

    it('cuts the client connection when the upstream body stalls beyond body_timeout_ms', async () => {
      harness.upstream.configure({ reply: { chunks: ['first', 'never'], chunkDelayMs: 3_000 } });
      harness.front.overrides = () => ({ upstream: 'slow' });
      const response = await harness.front.client.request({ method: 'GET', path: '/stall' });
      expect(response.statusCode).toBe(200);
      await expect(within(response.body.text(), WAIT_MS, 'the body')).rejects.toMatchObject({ code: 'UND_ERR_SOCKET' });
      await eventually(() => harness.front.outcomes.length === 1, WAIT_MS, 'the outcome');
      expect(harness.front.outcomes[0]).toMatchObject({ status: 200, aborted: true, abortCause: 'upstream_timeout' });
    });
  });
});
