import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../src/config/schema.js';
import { RouteTable } from '../../src/http/route-table.js';

function route(name: string, path_prefix: string, methods?: RouteConfig['methods']): RouteConfig {
  return {
    name,
    path_prefix,
    methods,
    upstream: 'u',
    auth: 'api_key',
    cost: 1,
    on_store_error: 'closed',
    hide_headers: false,
    refund_on: [],
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
  const match = (method: string, path: string) => table.match(method, path)?.config.name;

  it('first configured match wins, not the longest prefix', () => {
    expect(match('POST', '/api/v1/items')).toBe('writes');
    expect(match('GET', '/api/v1/items')).toBe('v1');
    expect(match('GET', '/api/v2/items')).toBe('api');
    const reversed = new RouteTable([route('short', '/api'), route('long', '/api/v1')]);
    expect(reversed.match('GET', '/api/v1/x')?.config.name).toBe('short');
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
});
