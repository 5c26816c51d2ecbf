import autocannon from 'autocannon';
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { Pool } from 'undici';

/**
 * Load generators. Both report latency percentiles from a microsecond
 * histogram, because autocannon's own latency histogram has a resolution of
 * 1 ms, too coarse for a "less than 2 ms added" target.
 *
 * - Saturation (default): autocannon, `connections` closed-loop connections,
 *   each sending its next request as soon as the previous one is answered.
 *   Measures the most a target serves on this machine.
 * - Paced (`ratePerSec` set): an open-loop generator that dispatches requests
 *   evenly, `ratePerSec` per second, over at most `connections` keep-alive
 *   connections. Measures latency at a load the target can sustain. (It does
 *   not use autocannon's `overallRate`, which sends each second's budget as a
 *   burst at the start of the second and so measures queueing of that burst.)
 */

export interface LoadOptions {
  /** Concurrent connections: closed-loop clients, or the paced generator's pool size. */
  readonly connections: number;
  readonly durationSec: number;
  /** Requests per second, sent evenly (paced mode); saturation when omitted. */
  readonly ratePerSec?: number;
}

export interface LoadResult {
  /** Completed requests per second: the mean of autocannon's per-second counts, or completed / elapsed when paced. */
  readonly requestsPerSec: number;
  readonly totalRequests: number;
  /** Latency percentiles of 2xx responses, in milliseconds (µs resolution). */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The slowest 2xx response, in milliseconds: a stall shows here. */
  readonly maxMs: number;
  readonly non2xx: number;
  /** Connection and request errors, including timeouts. */
  readonly errors: number;
  readonly timeouts: number;
  /** The first error's message, when there was one. */
  readonly firstError?: string;
  /** Responses per status code. */
  readonly statusCodes: Readonly<Record<string, number>>;
  /**
   * Paced only: requests never sent because the target fell a whole second
   * behind the rate (see runPaced); 0 when it kept up. The latencies of such a
   * run are a growing queue's.
   */
  readonly unsent?: number;
}

const REQUEST_TIMEOUT_SEC = 10;

/**
 * A load generator bound to one target. The paced one keeps its keep-alive
 * connections from one run to the next, so a measurement that follows a
 * warm-up does not start by opening connections.
 */
export interface LoadGenerator {
  /** Loads the target for `durationSec` and summarizes the run. */
  run(durationSec: number): Promise<LoadResult>;
  close(): Promise<void>;
}

/** A generator for `url` and `headers`: saturation, or paced when `options.ratePerSec` is set. */
export function createLoadGenerator(
  url: string,
  headers: Readonly<Record<string, string>>,
  options: Omit<LoadOptions, 'durationSec'>,
): LoadGenerator {
  const { ratePerSec } = options;
  if (ratePerSec === undefined) {
    return {
      run: (durationSec) => runSaturated(url, headers, { ...options, durationSec }),
      close: async () => {},
    };
  }
  const target = new URL(url);
  const pool = new Pool(target.origin, {
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: REQUEST_TIMEOUT_SEC * 1000,
    bodyTimeout: REQUEST_TIMEOUT_SEC * 1000,
  });
  const path = `${target.pathname}${target.search}`;
  return {
    run: (durationSec) => runPaced(pool, path, headers, ratePerSec, durationSec),
    close: () => pool.close(),
  };
}

function runSaturated(url: string, headers: Readonly<Record<string, string>>, options: LoadOptions): Promise<LoadResult> {
  const latencyUs = createHistogram();
  let firstError: string | undefined;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        headers: { ...headers },
        connections: options.connections,
        duration: options.durationSec,
        pipelining: 1,
        timeout: REQUEST_TIMEOUT_SEC,
      },
      (error: unknown, result) => {
        if (error !== null && error !== undefined) {
          reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        const statusCodes: Record<string, number> = {};
        for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = stat.count ?? 0;
        resolve({
          requestsPerSec: result.requests.average,
          totalRequests: result.requests.total,
          ...percentiles(latencyUs),
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          ...(firstError === undefined ? {} : { firstError }),
          statusCodes,
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
      if (statusCode >= 200 && statusCode < 300) latencyUs.record(Math.max(1, Math.round(responseTimeMs * 1000)));
    });
    instance.on('reqError', (error: unknown) => {
      firstError ??= error instanceof Error ? error.message : String(error);
    });
  });
}

async function runPaced(
  pool: Pool,
  path: string,
  headers: Readonly<Record<string, string>>,
  ratePerSec: number,
  durationSec: number,
): Promise<LoadResult> {
  const latencyUs = createHistogram();
  const statusCodes: Record<string, number> = {};
  let completed = 0;
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  let firstError: string | undefined;
  const inFlight = new Set<Promise<void>>();

  const send = (): void => {
    const sentAt = performance.now();
    const done = pool
      .request({ method: 'GET', path, headers: { ...headers } })
      .then(async (response) => {
        await response.body.dump();
        completed++;
        statusCodes[response.statusCode] = (statusCodes[response.statusCode] ?? 0) + 1;
        if (response.statusCode >= 200 && response.statusCode < 300) {
          latencyUs.record(Math.max(1, Math.round((performance.now() - sentAt) * 1000)));
        } else {
          non2xx++;
        }
      })
      .catch((error: unknown) => {
        errors++;
        const code = (error as { code?: unknown } | null)?.code;
        if (typeof code === 'string' && code.endsWith('_TIMEOUT')) timeouts++;
        firstError ??= error instanceof Error ? error.message : String(error);
      })
      .finally(() => inFlight.delete(done));
    inFlight.add(done);
  };

  // Dispatch on a 1 ms tick whatever is due, so the requests of one second are spread over it. A target that
  // cannot keep up would otherwise grow the queue without bound (and the run by minutes): once a second's worth
  // of requests is in flight, the rest of the run's requests are not sent, and the result says how many.
  const total = Math.round(ratePerSec * durationSec);
  const maxInFlight = Math.max(ratePerSec, 1);
  let unsent = 0;
  const intervalMs = 1000 / ratePerSec;
  const startedAt = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const dispatchDue = (): void => {
      const due = Math.min(total, Math.floor((performance.now() - startedAt) / intervalMs) + 1);
      for (; sent < due; sent++) send();
      if (inFlight.size > maxInFlight) {
        unsent = total - sent;
        sent = total;
      }
      if (sent >= total) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(dispatchDue, 1);
    dispatchDue();
  });
  await Promise.all(inFlight);
  const elapsedSec = (performance.now() - startedAt) / 1000;
  return {
    requestsPerSec: completed / elapsedSec,
    totalRequests: completed,
    ...percentiles(latencyUs),
    non2xx,
    errors,
    timeouts,
    ...(firstError === undefined ? {} : { firstError }),
    statusCodes,
    unsent,
  };
}

function percentiles(latencyUs: RecordableHistogram): { p50Ms: number; p99Ms: number; maxMs: number } {
  if (latencyUs.count === 0) return { p50Ms: Number.NaN, p99Ms: Number.NaN, maxMs: Number.NaN };
  return { p50Ms: latencyUs.percentile(50) / 1000, p99Ms: latencyUs.percentile(99) / 1000, maxMs: latencyUs.max / 1000 };
}
