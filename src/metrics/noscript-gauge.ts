import { Gauge, type Registry } from 'prom-client';

/**
 * `quotagate_redis_noscript_errors`: how many EVALSHA calls Redis has
 * answered NOSCRIPT, each one a script reload; `read` gives the count
 * (redis/noscript-errors.ts reads Redis's INFO errorstats) and is called
 * when Prometheus scrapes, never on the request path.
 */
export function registerNoscriptGauge(registry: Registry, read: () => Promise<number>): void {
  new Gauge({
    name: 'quotagate_redis_noscript_errors',
    help: 'EVALSHA calls Redis answered NOSCRIPT (each one a script reload), from INFO errorstats of the primaries in use.',
    registers: [registry],
    async collect() {
      this.set(await read());
    },
  });
}
