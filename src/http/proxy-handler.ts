import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../metrics/metrics.js';
import { Exchange } from './exchange.js';
import { writeProblem } from './node-response.js';
import { asGatewayError } from './problem-response.js';
import { requestIdOf } from './middleware/request-id.js';
import { isDashboardRequest } from './routes/customer-dashboard.js';
import { isPlanCatalogueRequest } from './routes/plan-catalogue.js';
import { isPreCheckRequest } from './routes/pre-check.js';
import { isSelfHistoryRequest } from './routes/self-history.js';
import { isSelfUsageRequest } from './routes/self-usage.js';
import { RequestCounters } from './request-counters.js';

/** The proxy listener's request handler, as node:http calls it; resolves once the answer is written. */
export type ProxyRequestListener = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** A step of the pipeline: it fills in the exchange, or throws a GatewayError the pipeline answers. */
export type SyncStep = (exchange: Exchange) => void;
/** A step that may need I/O; it returns a promise only when it does. */
export type Step = (exchange: Exchange) => Promise<void> | void;

/** The steps of one config generation, compiled by buildApp(). */
export interface ProxyPipeline {
  readonly matchRoute: SyncStep;
  readonly bodyLimit: SyncStep;
  readonly identify: Step;
  readonly limit: Step;
  readonly forward: (exchange: Exchange) => Promise<void>;
  /** `GET /_quotagate/usage`, answered before the route table. */
  readonly selfUsage: (exchange: Exchange) => Promise<void>;
  /** `GET /_quotagate/usage/history`, answered before the route table. */
  readonly selfHistory: (exchange: Exchange) => Promise<void>;
  /** `POST /_quotagate/check`, answered before the route table. */
  readonly preCheck: (exchange: Exchange) => Promise<void>;
  /** `GET /_quotagate/plans`, answered before the route table. */
  readonly planCatalogue: (exchange: Exchange) => void;
  /** `GET /_quotagate/dashboard` and its files, answered before the route table; absent when `dashboard.enabled` is false. */
  readonly dashboard?: ((exchange: Exchange) => void) | undefined;
  /** Writes the access-log line; absent when the access log is off. */
  readonly logAccess?: ((exchange: Exchange) => void) | undefined;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
}

/**
 * The proxy listener: one async function per request over one fixed-shape
 * {@link Exchange}, calling the steps in order — route → body limit →
 * identify → limit → forward — and awaiting a step only when it returned a
 * promise. Whatever a step throws is answered here as problem+json (with the
 * admitted rate-limit headers, except on denials, which carry their own);
 * then the request is counted, timed and logged.
 */
export function proxyHandler(pipeline: ProxyPipeline): ProxyRequestListener {
  const { metrics, logger, logAccess } = pipeline;
  const counters = new RequestCounters(metrics);
  return async function handleProxyRequest(req, res) {
    const exchange = new Exchange(req, res, performance.now());
    metrics.inFlight.inc();
    try {
      exchange.requestId = requestIdOf(exchange.header('x-request-id'));
      // One character test keeps the gateway's own paths off the common path.
      const answered = req.url?.charCodeAt(1) === 95 /* _ */ && (await answeredByGateway(pipeline, exchange));
      if (!answered) {
        const stepsDone = runSteps(pipeline, exchange);
        if (stepsDone !== undefined) await stepsDone;
      }
    } catch (error) {
      exchange.error = error;
      // An admitted Idempotency-Key is released before the client can see the error and retry.
      exchange.onAnswered?.();
      answerWithProblem(exchange, error, logger);
    } finally {
      metrics.inFlight.dec();
    }
    exchange.onAnswered?.();
    counters.record(exchange);
    logAccess?.(exchange);
  };
}

/**
 * Answers the gateway's own endpoints under `/_quotagate/` (usage, pre-check,
 * plan catalogue, dashboard); false when the request is none of them (it then goes to
 * the route table, which may well have a route for it).
 */
async function answeredByGateway(pipeline: ProxyPipeline, exchange: Exchange): Promise<boolean> {
  const { method, url } = exchange.req;
  if (isSelfUsageRequest(method, url)) await pipeline.selfUsage(exchange);
  else if (isSelfHistoryRequest(method, url)) await pipeline.selfHistory(exchange);
  else if (isPreCheckRequest(method, url)) await pipeline.preCheck(exchange);
  else if (isPlanCatalogueRequest(method, url)) pipeline.planCatalogue(exchange);
  else if (pipeline.dashboard !== undefined && isDashboardRequest(method, url)) pipeline.dashboard(exchange);
  else return false;
  return true;
}

/**
 * route → body limit → identify → limit, awaiting only a step that returned
 * a promise; then the forward step's promise, or undefined when the limit
 * step answered the request itself. Not async: on the common path (synchronous
 * steps) the forward step's promise is the only one the handler awaits.
 */
function runSteps(pipeline: ProxyPipeline, exchange: Exchange): Promise<void> | undefined {
  pipeline.matchRoute(exchange);
  pipeline.bodyLimit(exchange);
  const identified = pipeline.identify(exchange);
  if (identified !== undefined) return identified.then(() => limitThenForward(pipeline, exchange));
  return limitThenForward(pipeline, exchange);
}

function limitThenForward(pipeline: ProxyPipeline, exchange: Exchange): Promise<void> | undefined {
  const limited = pipeline.limit(exchange);
  if (limited !== undefined) return limited.then(() => (exchange.answered ? undefined : pipeline.forward(exchange)));
  return exchange.answered ? undefined : pipeline.forward(exchange);
}

function answerWithProblem(exchange: Exchange, error: unknown, logger: Logger): void {
  const gatewayError = asGatewayError(error);
  if (gatewayError.code === 'internal_error') logger.error({ err: error }, 'request failed');
  const { res } = exchange;
  if (res.headersSent || res.destroyed) {
    // Nothing more can be said on this connection.
    res.destroy();
    return;
  }
  // Denials carry their own rate-limit headers; later failures (502, 504) get the admitted ones.
  const denial = gatewayError.code === 'rate_limited' || gatewayError.code === 'quota_exceeded';
  const limitHeaders = denial ? [] : exchange.rateLimitHeaders;
  writeProblem(res, gatewayError, [...limitHeaders, ['x-request-id', exchange.requestId]]);
}
