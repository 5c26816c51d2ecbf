import { describe, expect, it } from 'vitest';
import { buildClientResponseHeaders } from '../../src/proxy/response-headers.js';

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
});
