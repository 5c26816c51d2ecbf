import type { Logger } from 'pino';
import { ConfigError } from './config/load.js';
import { type ReloadResult, sectionsNeedingRestart } from './config/restart.js';
import type { GatewayConfig } from './config/schema.js';
import type { Clock } from './core/clock.js';
import type { ProxyRequestListener } from './http/proxy-handler.js';
import type { GatewayMetrics } from './metrics/metrics.js';

/**
 * Hot reload of gateway.yaml (SIGHUP or `POST /admin/reload`). Everything
 * built from the config — routes, plans, upstream pools, the apps — forms a
 * {@link ServingGeneration}; a reload builds a new one and swaps it in one
 * assignment, so each request runs wholly on the old or wholly on the new
 * config. The old generation is retired once its last request has finished.
 * The limiter, the store and the databases outlive generations: sections
 * that configure them cannot change without a restart.
 */

/** The admin listener's request handler, as @hono/node-server calls it. */
// `env` is @hono/node-server's bindings (the node request and response), passed through untouched.
export type FetchHandler = (request: Request, env?: object) => Response | Promise<Response>;

/** What one config is served with; built by main.ts. */
export interface ServingGeneration {
  readonly config: GatewayConfig;
  readonly proxy: ProxyRequestListener;
  readonly admin: FetchHandler;
  /** Releases what only this generation uses (its upstream pools); called once no request of it is in flight. */
  retire(): Promise<void>;
  /** Abrupt: fails whatever of it is still in flight and drops its upstream connections now (shutdown past its deadline). */
  destroy(): Promise<void>;
}

/** What a generation may ask of the reloader that serves it (the admin API's `POST /admin/reload`). */
export interface Reloader {
  /** See {@link ConfigReloader.reload}. */
  reload(trigger: string): Promise<ReloadResult>;
}

export interface ConfigReloaderOptions {
  /** The config served first; its generation is built by `build` when the reloader is made. */
  readonly initial: GatewayConfig;
  /** Reads and validates the config file; rejects with a ConfigError. */
  readonly load: () => Promise<GatewayConfig>;
  /**
   * Builds a generation from a valid config (no I/O beyond creating pools);
   * `reloader` is the one that will serve it.
   */
  readonly build: (config: GatewayConfig, reloader: Reloader) => ServingGeneration;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
}

/** The generation in service plus its count of requests in flight. */
interface Tracked {
  readonly generation: ServingGeneration;
  inFlight: number;
  /** Set once swapped out: resolves the retirement when inFlight reaches 0. */
  onIdle?: () => void;
}

/**
 * Holds the serving generation; `proxy` and `admin` are the stable handlers
 * the listeners call. Reloads run one at a time, in the order asked.
 */
export class ConfigReloader implements Reloader {
  #current: Tracked;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #retiring = new Set<Promise<void>>();
  /** Generations swapped out whose retirement has not finished yet. */
  readonly #retiringGenerations = new Set<ServingGeneration>();
  readonly #options: ConfigReloaderOptions;

  constructor(options: ConfigReloaderOptions) {
    this.#options = options;
    this.#current = { generation: options.build(options.initial, this), inFlight: 0 };
  }

  /** The config now serving. */
  get config(): GatewayConfig {
    return this.#current.generation.config;
  }

  /** The proxy listener's handler: the current generation's, counted until its response is done. */
  readonly proxy: ProxyRequestListener = (req, res) => this.#serveProxy(this.#current, req, res);

  /** The admin listener's handler. */
  readonly admin: FetchHandler = (request, env) => this.#serveAdmin(this.#current, request, env);

  /** Re-reads the config file and swaps it in when it is valid and applicable. */
  reload(trigger: string): Promise<ReloadResult> {
    const result = this.#queue.then(() => this.#reloadNow(trigger));
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** Waits for pending reloads and retirements, then retires the current generation. */
  async close(): Promise<void> {
    await this.#queue;
    await Promise.allSettled([...this.#retiring]);
    await this.#current.generation.retire();
  }

  /** Abrupt: destroys the current generation and every one still retiring (when {@link close} did not finish in time). */
  async destroy(): Promise<void> {
    const generations = [this.#current.generation, ...this.#retiringGenerations];
    await Promise.allSettled(generations.map((generation) => generation.destroy()));
  }

  async #serveProxy(tracked: Tracked, req: Parameters<ProxyRequestListener>[0], res: Parameters<ProxyRequestListener>[1]): Promise<void> {
    tracked.inFlight++;
    try {
      await tracked.generation.proxy(req, res);
    } finally {
      if (--tracked.inFlight === 0) tracked.onIdle?.();
    }
  }

  async #serveAdmin(tracked: Tracked, request: Request, env: object | undefined): Promise<Response> {
    tracked.inFlight++;
    try {
      return await tracked.generation.admin(request, env);
    } finally {
      if (--tracked.inFlight === 0) tracked.onIdle?.();
    }
  }

  async #reloadNow(trigger: string): Promise<ReloadResult> {
    const { metrics, logger } = this.#options;
    const result = await this.#tryReload();
    if (result.ok) {
      metrics.configReloads.inc({ result: 'ok' });
      metrics.configLastReloadSuccess.set(this.#options.clock.now() / 1000);
      logger.info({ trigger, routes: result.routes, plans: result.plans, upstreams: result.upstreams }, 'config reloaded');
    } else {
      metrics.configReloads.inc({ result: 'rejected' });
      logger.error({ trigger, reason: result.reason, problems: result.problems }, 'config reload rejected; the previous config keeps serving');
    }
    return result;
  }

  async #tryReload(): Promise<ReloadResult> {
    let config: GatewayConfig;
    try {
      config = await this.#options.load();
    } catch (error) {
      if (error instanceof ConfigError) return { ok: false, reason: 'invalid', problems: error.problems };
      throw error;
    }
    const changed = sectionsNeedingRestart(this.config, config);
    if (changed.length > 0) {
      return {
        ok: false,
        reason: 'needs_restart',
        problems: [`${changed.join(', ')}: changed, and cannot be applied without a restart; nothing was reloaded`],
      };
    }
    const next: Tracked = { generation: this.#options.build(config, this), inFlight: 0 };
    const previous = this.#current;
    this.#current = next;
    this.#retire(previous);
    return {
      ok: true,
      routes: config.routes.length,
      plans: Object.keys(config.plans).length,
      upstreams: Object.keys(config.upstreams).length,
    };
  }

  #retire(tracked: Tracked): void {
    this.#retiringGenerations.add(tracked.generation);
    const idle = new Promise<void>((resolve) => {
      tracked.onIdle = resolve;
      if (tracked.inFlight === 0) resolve();
    });
    const retired = idle
      .then(() => tracked.generation.retire())
      .catch((error: unknown) => this.#options.logger.warn({ err: error }, 'closing the previous config’s upstream pools failed'))
      .finally(() => {
        this.#retiring.delete(retired);
        this.#retiringGenerations.delete(tracked.generation);
      });
    this.#retiring.add(retired);
  }
}

