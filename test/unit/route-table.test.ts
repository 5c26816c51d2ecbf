import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../src/config/schema.js';
import { type RouteLookup, RouteTable } from '../../src/http/route-table.js';

function route(name: string, path_prefix: string, methods?: RouteConfig['methods']): RouteConfig {
  return {
    name,
    path_prefix,
    methods,
    upstream: 'u',
    auth: 'api_key',
    forward_token: true,
    cost: 1,
    on_store_error: 'closed',
    hide_headers: false,
    refund_on: [],
    mode: 'enforce',
    idempotency_methods: ['POST', 'PATCH'],
  };
}

describe('RouteTable', () => {
  const table = new RouteTable([
    route('writes', '/api/v1', ['POST', 'PUT']),
    route('v1', '/api/v1/'),
    route('api', '/api'),
    route('health', '/health', ['GET']),
    route('catch-all', '/', ['GET']),
  ]);
  const nameOf = (found: RouteLookup) => (typeof found === 'string' ? found : found?.config.name);
  const match = (method: string, path: string) => nameOf(table.match(method, path));

  it('first configured match wins, not the longest prefix', () => {
    expect(match('POST', '/api/v1/items')).toBe('writes');
    expect(match('GET', '/api/v1/items')).toBe('v1');
    expect(match('GET', '/api/v2/items')).toBe('api');
    const reversed = new RouteTable([route('short', '/api'), route('long', '/api/v1')]);
    expect(nameOf(reversed.match('GET', '/api/v1/x'))).toBe('short');
  });

  it('matches whole segments only', () => {
    expect(match('GET', '/api')).toBe('api');
    expect(match('GET', '/api/')).toBe('api');
    expect(match('GET', '/apix')).toBe('catch-all');
    expect(match('POST', '/apix')).toBeUndefined();
  });

  it('honours methods', () => {
    expect(match('DELETE', '/health')).toBeUndefined();
    expect(match('GET', '/health/live')).toBe('health');
  });

  it('returns undefined when nothing matches', () => {
    expect(new RouteTable([route('only', '/only')]).match('GET', '/other')).toBeUndefined();
  });

  it('is case-sensitive, like the upstream paths it guards', () => {
    expect(new RouteTable([route('api', '/api')]).match('GET', '/API')).toBeUndefined();
  });

  it('skips empty segments, as nginx merges slashes', () => {
    expect(match('GET', '/api//v2')).toBe('api');
    expect(match('POST', '//api/v1/items')).toBe('writes');
  });

  it('reports a path whose route changes when case is ignored (a case-insensitive upstream would serve the other)', () => {
    const costly = new RouteTable([route('costly', '/api/costly'), route('public', '/', ['GET'])]);
    expect(nameOf(costly.match('GET', '/api/costly/x'))).toBe('costly');
    expect(nameOf(costly.match('GET', '/API/Costly/x'))).toBe('ambiguous-case');
    expect(nameOf(costly.match('GET', '/api/COSTLYX'))).toBe('public');
    // Capitals the routes do not care about change nothing.
    expect(nameOf(costly.match('GET', '/Docs/Intro'))).toBe('public');
    expect(nameOf(costly.match('GET', '/api/costly/ItemA'))).toBe('costly');
  });

  it('compares against capitals in a prefix too', () => {
    const capital = new RouteTable([route('reports', '/Reports'), route('rest', '/')]);
    expect(nameOf(capital.match('GET', '/Reports/1'))).toBe('reports');
    expect(nameOf(capital.match('GET', '/reports/1'))).toBe('ambiguous-case');
  });
});

describe('RouteTable compiling a route cost', () => {
  it('charges a plain cost as it is, with nothing to settle', () => {
    const found = new RouteTable([{ ...route('fixed', '/'), cost: 3 }]).match('GET', '/x');
    expect(typeof found === 'object' && found !== undefined ? [found.cost, found.settlement] : found).toEqual([3, undefined]);
  });

  it.each([
    [{ header: 'X-Usage-Units' }, { reserve: 500, from: 'header', field: 'x-usage-units' }],
    [{ trailer: 'X-Usage-UNITS' }, { reserve: 500, from: 'trailer', field: 'x-usage-units' }],
  ] as const)('charges the reserve of a cost settled from %o, the field name lowercased once', (from_response, settlement) => {
    const found = new RouteTable([{ ...route('settled', '/'), cost: { reserve: 500, from_response } }]).match('GET', '/x');
    expect(typeof found === 'object' && found !== undefined ? [found.cost, found.settlement] : found).toEqual([500, settlement]);
  });
});
