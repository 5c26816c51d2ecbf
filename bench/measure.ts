import autocannon from 'autocannon';
import { createHistogram } from 'node:perf_hooks';

/**
 * One autocannon run against one URL. Throughput comes from autocannon;
 * latency percentiles come from a microsecond histogram fed by autocannon's
 * `response` event, because autocannon's own latency histogram has a
 * resolution of 1 ms, too coarse for a "less than 2 ms added" target.
 */

export interface LoadOptions {
  readonly connections: number;
  readonly durationSec: number;
  /** Total requests per second across all connections; unlimited (saturation) when omitted. */
  readonly ratePerSec?: number;
}

export interface LoadResult {
  /** Mean of the per-second request counts (autocannon's `requests.average`). */
  readonly requestsPerSec: number;
  readonly totalRequests: number;
  /** Latency percentiles of 2xx responses, in milliseconds (µs resolution). */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  /** Connection errors, including timeouts. */
  readonly errors: number;
  readonly timeouts: number;
  /** Responses per status code. */
  readonly statusCodes: Readonly<Record<string, number>>;
}

/** Loads `url` with `headers` for `options.durationSec` and summarizes the run. */
export function runLoad(url: string, headers: Readonly<Record<string, string>>, options: LoadOptions): Promise<LoadResult> {
  const latencyUs = createHistogram();
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        headers: { ...headers },
        connections: options.connections,
        duration: options.durationSec,
        pipelining: 1,
        ...(options.ratePerSec === undefined ? {} : { overallRate: options.ratePerSec }),
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
          p50Ms: latencyUs.count === 0 ? Number.NaN : latencyUs.percentile(50) / 1000,
          p99Ms: latencyUs.count === 0 ? Number.NaN : latencyUs.percentile(99) / 1000,
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          statusCodes,
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
      if (statusCode >= 200 && statusCode < 300) latencyUs.record(Math.max(1, Math.round(responseTimeMs * 1000)));
    });
  });
}
