import { describe, expect, it } from 'vitest';
import { connectionNominated, HOP_BY_HOP_HEADERS, isHopByHop, stripHopByHop } from '../../src/proxy/hop-by-hop.js';

describe('connectionNominated', () => {
  it('nominates nothing for no header, keep-alive or close', () => {
    expect(connectionNominated(undefined)).toEqual([]);
    expect(connectionNominated('keep-alive')).toEqual([]);
    expect(connectionNominated('Close')).toEqual([]);
    expect(connectionNominated('')).toEqual([]);
  });

  it('returns the extra names, lowercased and trimmed', () => {
    expect(connectionNominated('X-Custom-Hop')).toEqual(['x-custom-hop']);
    expect(connectionNominated('keep-alive, X-A ,x-b,,')).toEqual(['x-a', 'x-b']);
  });

  it('reads repeated Connection fields as one list', () => {
    expect(connectionNominated(['close', 'X-A', 'x-b, upgrade'])).toEqual(['x-a', 'x-b']);
  });
});

describe('isHopByHop', () => {
  it('covers the fixed RFC 9110 list whatever Connection says', () => {
    for (const name of [
      'connection',
      'keep-alive',
      'proxy-connection',
      'transfer-encoding',
      'te',
      'trailer',
      'upgrade',
      'proxy-authenticate',
      'proxy-authorization',
    ]) {
      expect(HOP_BY_HOP_HEADERS.has(name)).toBe(true);
      expect(isHopByHop(name, [])).toBe(true);
    }
  });

  it('covers names nominated by Connection and nothing else', () => {
    expect(isHopByHop('x-custom-hop', ['x-custom-hop'])).toBe(true);
    expect(isHopByHop('x-other', ['x-custom-hop'])).toBe(false);
    expect(isHopByHop('content-type', [])).toBe(false);
  });
});

describe('stripHopByHop', () => {
  it('strips fixed and nominated fields from node request headers', () => {
    const stripped = stripHopByHop({
      host: 'example.com',
      connection: 'keep-alive, X-Secret-Hop',
      'keep-alive': 'timeout=5',
      'x-secret-hop': '1',
      te: 'trailers',
      'transfer-encoding': 'chunked',
      'proxy-authorization': 'Basic Zm9vOmJhcg==',
      'content-type': 'application/json',
      'set-cookie': ['a=1', 'b=2'],
      'x-absent': undefined,
    });
    expect(stripped).toEqual({ host: 'example.com', 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
  });

  it('strips from undici-shaped response headers, keeping repeated fields whole', () => {
    const stripped = stripHopByHop<string | string[]>({
      connection: ['close', 'x-hop'],
      'x-hop': 'a',
      upgrade: 'h2c',
      'proxy-authenticate': 'Basic',
      trailer: 'x-checksum',
      'set-cookie': ['a=1', 'b=2'],
      'content-length': '10',
    });
    expect(stripped).toEqual({ 'set-cookie': ['a=1', 'b=2'], 'content-length': '10' });
  });

  it('treats a field named __proto__ as an ordinary field', () => {
    const headers: Record<string, string> = Object.create(null) as Record<string, string>;
    headers['__proto__'] = 'x';
    const stripped = stripHopByHop(headers);
    expect(Object.getPrototypeOf(stripped)).toBeNull();
    expect(Object.keys(stripped)).toEqual(['__proto__']);
  });
});
