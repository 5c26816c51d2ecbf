import { describe, expect, it } from 'vitest';
import type { UpstreamConfig } from '../../src/config/schema.js';
import { UpstreamPools } from '../../src/proxy/upstream-pools.js';

function config(url: string): UpstreamConfig {
  return {
    url,
    connect_timeout_ms: 1_000,
    headers_timeout_ms: 2_000,
    body_timeout_ms: 3_000,
    connections: 8,
    keep_alive_timeout_ms: 4_000,
    queue_timeout_ms: 500,
  };
}

describe('UpstreamPools', () => {
  it('creates one pool per upstream, carrying its timeouts', async () => {
    const pools = new UpstreamPools({ api: config('http://127.0.0.1:9/'), billing: config('https://billing.internal') });
    expect(pools.names()).toEqual(['api', 'billing']);
    const api = pools.get('api');
    expect(api.name).toBe('api');
    expect(api.headersTimeoutMs).toBe(2_000);
    expect(api.bodyTimeoutMs).toBe(3_000);
    expect(pools.get('billing').pool).not.toBe(api.pool);
    await pools.close();
  });

  it('throws on an upstream that is not configured', async () => {
    const pools = new UpstreamPools({ api: config('http://127.0.0.1:9') });
    expect(() => pools.get('missing')).toThrow('no upstream named "missing"');
    await pools.destroy();
  });

  it('closes gracefully, and may be closed or destroyed again afterwards', async () => {
    const pools = new UpstreamPools({ api: config('http://127.0.0.1:9') });
    await pools.close();
    expect(pools.get('api').pool.closed).toBe(true);
    await pools.close();
    await pools.destroy();
    await pools.destroy();
  });
});
