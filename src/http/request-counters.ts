import { GatewayError } from '../core/errors.js';
import type { CounterCell, HistogramCell } from '../metrics/hot-metrics.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import { answeredOutcome, type Exchange } from './exchange.js';

type CounterChild = CounterCell;
type HistogramChild = HistogramCell;

interface RouteHandles {
  /** `plan → outcome → requests_total child`. */
  readonly requests: Map<string, Map<string, CounterChild>>;
  /** `outcome → request_duration_seconds child`. */
  readonly durations: Map<string, HistogramChild>;
}

/**
 * `quotagate_requests_total{route,plan,outcome}` and
 * `quotagate_request_duration_seconds{route,outcome}` through metric
 * cells resolved once per label combination and kept: a request costs
 * three Map lookups, never a labels object. Label values
 * are bounded (configured routes and plans, the fixed set of outcomes), so
 * the maps are too.
 */
export class RequestCounters {
  readonly #byRoute = new Map<string, RouteHandles>();

  constructor(private readonly metrics: GatewayMetrics) {}

  /** Counts and times one answered request. */
  record(exchange: Exchange): void {
    const { error } = exchange;
    const outcome = error === undefined ? answeredOutcome(exchange.decision) : error instanceof GatewayError ? error.code : 'internal_error';
    const route = exchange.route?.config.name ?? '';
    const plan = exchange.identity?.plan ?? '';
    const handles = this.#handlesOf(route);
    let byOutcome = handles.requests.get(plan);
    if (byOutcome === undefined) {
      byOutcome = new Map();
      handles.requests.set(plan, byOutcome);
    }
    let counter = byOutcome.get(outcome);
    if (counter === undefined) {
      counter = this.metrics.requests.labels(route, plan, outcome);
      byOutcome.set(outcome, counter);
    }
    counter.inc();
    let duration = handles.durations.get(outcome);
    if (duration === undefined) {
      duration = this.metrics.requestDuration.labels(route, outcome);
      handles.durations.set(outcome, duration);
    }
    duration.observe((performance.now() - exchange.startMs) / 1000);
  }

  #handlesOf(route: string): RouteHandles {
    let handles = this.#byRoute.get(route);
    if (handles === undefined) {
      handles = { requests: new Map(), durations: new Map() };
      this.#byRoute.set(route, handles);
    }
    return handles;
  }
}
