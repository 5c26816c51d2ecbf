import { describe, expect, it } from 'vitest';
import { rateLimitHeaders } from '../../src/core/ratelimit-headers.js';
import { CALENDAR_WINDOW_NAMES } from '../../src/core/windows.js';
import { buildClientResponseHeaders, GATEWAY_FIELD_NAMES } from '../../src/proxy/response-headers.js';

describe('buildClientResponseHeaders', () => {
  it('copies end-to-end fields, one entry per repeated value', () => {
    expect(buildClientResponseHeaders({ 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] }, [])).toEqual([
      'content-type',
      'text/plain',
      'set-cookie',
      'a=1',
      'set-cookie',
      'b=2',
    ]);
  });

  it('drops hop-by-hop fields and those named in Connection', () => {
    const built = buildClientResponseHeaders(
      {
        connection: 'keep-alive, x-upstream-hop',
        'keep-alive': 'timeout=99',
        'x-upstream-hop': '1',
        'transfer-encoding': 'chunked',
        'proxy-authenticate': 'Basic',
        upgrade: 'h2c',
        trailer: 'x-checksum',
        etag: '"v1"',
      },
      [],
    );
    expect(built).toEqual(['etag', '"v1"']);
  });

  it("appends the gateway's headers, replacing upstream fields of the same name", () => {
    const built = buildClientResponseHeaders(
      { ratelimit: '"upstream";r=1', 'x-ratelimit-limit': ['5', '6'], etag: '"v1"' },
      [
        ['RateLimit', '"hour";r=41;t=1260'],
        ['x-ratelimit-limit', '600'],
      ],
    );
    expect(built).toEqual(['etag', '"v1"', 'RateLimit', '"hour";r=41;t=1260', 'x-ratelimit-limit', '600']);
  });

  it('replaces the upstream x-request-id with the request id given, after the gateway headers', () => {
    const built = buildClientResponseHeaders({ 'x-request-id': 'upstream-id', etag: '"v1"' }, [['RateLimit', '"hour";r=1;t=5']], 'gateway-id');
    expect(built).toEqual(['etag', '"v1"', 'RateLimit', '"hour";r=1;t=5', 'x-request-id', 'gateway-id']);
    // Without a request id the upstream's passes through.
    expect(buildClientResponseHeaders({ 'x-request-id': 'upstream-id' }, [])).toEqual(['x-request-id', 'upstream-id']);
  });

  it('keeps an upstream field the gateway could write but does not write on this response', () => {
    const built = buildClientResponseHeaders({ 'x-ratelimit-limit-hour': '7' }, [['RateLimit', '"day";r=1;t=5']]);
    expect(built).toEqual(['x-ratelimit-limit-hour', '7', 'RateLimit', '"day";r=1;t=5']);
  });

  it('knows every field name rateLimitHeaders writes, for every window and family', () => {
    const states = CALENDAR_WINDOW_NAMES.map((window) => ({ name: window, kind: 'window' as const, window, limit: 10, remaining: 3, resetSeconds: 5, periodSeconds: 60 }));
    const names = rateLimitHeaders(states, 'delta-seconds', 0, undefined, undefined, { metric: 'search', balance: 4, charged: 0 }).map(([name]) => name.toLowerCase());
    expect(names.length).toBe(5 + 2 * CALENDAR_WINDOW_NAMES.length);
    expect(names.filter((name) => !GATEWAY_FIELD_NAMES.has(name))).toEqual([]);
  });
});
