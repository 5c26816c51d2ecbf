import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';

const ROOT = resolve(import.meta.dirname, '../..');
const shipped = [
  'gateway.yaml',
  ...readdirSync(resolve(ROOT, 'config'))
    .filter((name) => name.endsWith('.yaml') && name.startsWith('gateway'))
    .map((name) => `config/${name}`),
  'bench/gateway.bench.yaml',
  'bench/gateway.bench-redis.yaml',
];

describe('shipped configs', () => {
  it.each(shipped)('%s validates with an empty environment', async (path) => {
    const config = await loadConfigFile(resolve(ROOT, path), {});
    expect(config.routes.length).toBeGreaterThan(0);
  });

  it('gateway.yaml defines the four commercial plans as the issue fixes them', async () => {
    const config = await loadConfigFile(resolve(ROOT, 'gateway.yaml'), {});
    const limits = Object.fromEntries(
      ['free', 'pro', 'business', 'enterprise'].map((plan) => [plan, config.plans[plan]?.limits]),
    );
    expect(limits).toEqual({
      free: { hour: 60, day: 1_000, month: 10_000 },
      pro: { hour: 600, day: 10_000, month: 250_000 },
      business: { hour: 3_000, day: 50_000, month: 1_000_000 },
      enterprise: { hour: 10_000, day: 200_000, month: 5_000_000 },
    });
  });

  it('gateway.yaml listens on 8080 and the admin listener on 127.0.0.1:8081 by default', async () => {
    const config = await loadConfigFile(resolve(ROOT, 'gateway.yaml'), {});
    expect(config.listeners).toEqual({
      proxy: { host: '0.0.0.0', port: 8080 },
      admin: { host: '127.0.0.1', port: 8081 },
    });
  });
});
