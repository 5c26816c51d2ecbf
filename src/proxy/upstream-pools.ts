import { Pool } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';

/** One configured upstream: its connection pool and the timeouts every request to it uses. */
export interface UpstreamPool {
  readonly name: string;
  /** Keep-alive connections to the upstream's origin. */
  readonly pool: Pool;
  /** Longest wait for the response headers once the request is sent. */
  readonly headersTimeoutMs: number;
  /** Longest pause between two chunks of the response body. */
  readonly bodyTimeoutMs: number;
}

/**
 * The undici `Pool` of each configured upstream, created up front from
 * `upstreams:` so the first request does not pay for it. A config reload
 * builds a new `UpstreamPools` and closes the old one once it is drained.
 */
export class UpstreamPools {
  readonly #byName: ReadonlyMap<string, UpstreamPool>;

  constructor(upstreams: Readonly<Record<string, UpstreamConfig>>) {
    const byName = new Map<string, UpstreamPool>();
    for (const [name, config] of Object.entries(upstreams)) {
      byName.set(name, {
        name,
        pool: new Pool(config.url, {
          connections: config.connections,
          keepAliveTimeout: config.keep_alive_timeout_ms,
          connect: { timeout: config.connect_timeout_ms },
          headersTimeout: config.headers_timeout_ms,
          bodyTimeout: config.body_timeout_ms,
        }),
        headersTimeoutMs: config.headers_timeout_ms,
        bodyTimeoutMs: config.body_timeout_ms,
      });
    }
    this.#byName = byName;
  }

  /**
   * The upstream named `name`.
   * @throws Error when no upstream has that name: config validation makes
   *   every route name a defined upstream, so this is a programming fault.
   */
  get(name: string): UpstreamPool {
    const upstream = this.#byName.get(name);
    if (upstream === undefined) throw new Error(`no upstream named "${name}"`);
    return upstream;
  }

  /** Names of the configured upstreams, in configuration order. */
  names(): string[] {
    return [...this.#byName.keys()];
  }

  /** Graceful: requests already dispatched complete; new ones are refused. Resolves when all are done. */
  async close(): Promise<void> {
    await Promise.all([...this.#byName.values()].map(({ pool }) => (pool.closed ? undefined : pool.close())));
  }

  /** Abrupt: in-flight requests fail and every connection is dropped now. */
  async destroy(): Promise<void> {
    await Promise.all([...this.#byName.values()].map(({ pool }) => (pool.destroyed ? undefined : pool.destroy())));
  }
}
