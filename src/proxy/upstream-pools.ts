import { type Dispatcher, Pool } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import { ConnectionSlots, type WaitSignal } from './connection-slots.js';

/** One configured upstream: its connection pool and the timeouts every request to it uses. */
export interface UpstreamPool {
  readonly name: string;
  /** Keep-alive connections to the upstream's origin, with a bounded wait for a free one. */
  readonly pool: BoundedPool;
  /** Longest wait for the response headers once the request is sent. */
  readonly headersTimeoutMs: number;
  /** Longest pause between two chunks of the response body. */
  readonly bodyTimeoutMs: number;
}

/**
 * An undici `Pool` whose requests first take one of its connection slots
 * ({@link ConnectionSlots}): a request that finds every connection busy
 * waits at most `queue_timeout_ms`, then fails with UpstreamBusyError (503
 * `upstream_busy`) instead of queueing inside undici without limit. A slot
 * is held from dispatch until the response body closes (read to its end or
 * destroyed), or until the request fails.
 */
export class BoundedPool {
  readonly #pool: Pool;
  readonly slots: ConnectionSlots;
  readonly #release: () => void;

  constructor(name: string, config: UpstreamConfig) {
    this.#pool = new Pool(config.url, {
      connections: config.connections,
      keepAliveTimeout: config.keep_alive_timeout_ms,
      connect: { timeout: config.connect_timeout_ms },
      headersTimeout: config.headers_timeout_ms,
      bodyTimeout: config.body_timeout_ms,
    });
    const slots = new ConnectionSlots(name, config.connections, config.queue_timeout_ms);
    this.slots = slots;
    this.#release = () => slots.release();
  }

  /**
   * undici's `request`, once a connection slot is free. Rejects with
   * UpstreamBusyError when none comes free in time, or with the signal's
   * reason when it aborts while waiting.
   */
  request(options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
    if (this.slots.tryAcquire()) return this.#request(options);
    return this.slots.wait(waitSignalOf(options.signal)).then(() => this.#request(options));
  }

  /**
   * undici's `dispatch` (the forwarder's path). The caller holds a slot
   * (`slots.tryAcquire()` or `slots.wait()`) and releases it when the
   * handler's exchange ends.
   */
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    this.#pool.dispatch(options, handler);
  }

  #request(options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
    return this.#pool.request(options).then(this.#holdUntilBodyCloses, this.#releaseAndRethrow);
  }

  // Built once per pool, not per request.
  readonly #holdUntilBodyCloses = (response: Dispatcher.ResponseData): Dispatcher.ResponseData => {
    response.body.once('close', this.#release);
    return response;
  };

  readonly #releaseAndRethrow = (error: unknown): never => {
    this.#release();
    throw error;
  };

  get closed(): boolean {
    return this.#pool.closed;
  }

  get destroyed(): boolean {
    return this.#pool.destroyed;
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  destroy(): Promise<void> {
    return this.#pool.destroy();
  }
}

/** The signal in a form the slot wait can watch: an emitter of `abort`. */
function waitSignalOf(signal: Dispatcher.RequestOptions['signal']): WaitSignal | undefined {
  const candidate = signal as Partial<WaitSignal> | null | undefined;
  return typeof candidate?.once === 'function' ? (candidate as WaitSignal) : undefined;
}

/**
 * The pool of each configured upstream, created up front from `upstreams:`
 * so the first request does not pay for it. Each upstream has its own
 * connections and its own slots, so requests that hold one upstream's
 * connections (slow uploads, a slow service) never take another's. A config
 * reload builds a new `UpstreamPools` and closes the old one once drained.
 */
export class UpstreamPools {
  readonly #byName: ReadonlyMap<string, UpstreamPool>;

  constructor(upstreams: Readonly<Record<string, UpstreamConfig>>) {
    const byName = new Map<string, UpstreamPool>();
    for (const [name, config] of Object.entries(upstreams)) {
      byName.set(name, {
        name,
        pool: new BoundedPool(name, config),
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
