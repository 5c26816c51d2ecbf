import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { buildPlans } from '../../src/config/plans.js';
import { parseConfigText } from '../../src/config/load.js';
import { DenialTally } from '../../src/core/denial-tally.js';
import { GatewayError } from '../../src/core/errors.js';
import { BlockedSubjects } from '../../src/core/subject-blocks.js';
import { parseLimitOverrides } from '../../src/core/limit-overrides.js';
import { Exchange } from '../../src/http/exchange.js';
import { limit } from '../../src/http/middleware/limit.js';
import { RouteTable } from '../../src/http/route-table.js';
import { CircuitBreaker } from '../../src/limiter/circuit-breaker.js';
import { GuardedLimiter } from '../../src/limiter/guarded-limiter.js';
import { LocalDenyCache } from '../../src/limiter/local-deny-cache.js';
import { MemoryLimiter } from '../../src/limiter/memory-limiter.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { bodyPaceLimitsOf } from '../../src/proxy/body-pace.js';
import { ManualClock } from '../support/manual-clock.js';

/**
 * The limit step of the proxy pipeline, in process: built from its options
 * as app.ts builds it, over the memory store behind its guards, run on an
 * Exchange over node's own request and response objects (nothing listens),
 * without the composition root.
 */

const CONFIG = parseConfigText(
  `
upstreams:
  app: { url: "http://127.0.0.1:9" }
routes:
  - { name: api, path_prefix: /, upstream: app }
plans:
  small: { limits: { minute: 2, hour: 100 } }
`,
  'limit-test.yaml',
  {},
);
const ROUTES = new RouteTable(CONFIG.routes);
const NOW = Date.UTC(2026, 5, 15, 10, 30, 15);

function limitStep(abuse: { denials?: DenialTally; blocked?: BlockedSubjects } = {}) {
  const clock = new ManualClock(NOW);
  const limiter = new GuardedLimiter({
    limiter: new MemoryLimiter({ clock, sweepIntervalMs: 0 }),
    storeName: 'memory',
    breaker: new CircuitBreaker({ failureThreshold: 2, openMs: 1000, clock }),
    denyCache: new LocalDenyCache(100, clock),
    metrics: createMetrics({ collectProcessMetrics: false }),
    clock,
    storeRetryAfterSeconds: 1,
  });
  return limit({
    limiter,
    plans: buildPlans(CONFIG.plans),
    resetFormat: CONFIG.headers.reset_format,
    headerSets: { ietf: true, legacy: false, legacyPerWindow: false },
    clock,
    maxBodyBytes: CONFIG.proxy.max_body_bytes,
    requestBodyPace: bodyPaceLimitsOf(CONFIG.proxy),
    idempotency: { maxBodyBytes: CONFIG.idempotency.max_body_bytes, maxResponseBytes: CONFIG.idempotency.max_response_bytes },
    ...abuse,
  });
}

/** An exchange for `GET /things` by `subject` on plan small (with `overrides`), routed and identified as the earlier steps do. */
function exchangeOf(subject: string, overrides?: unknown): Exchange {
  const req = new IncomingMessage(new Socket());
  req.method = 'GET';
  req.url = '/things';
  req.headers = {};
  const exchange = new Exchange(req, new ServerResponse(req), 0);
  const route = ROUTES.match('GET', '/things');
  if (route === undefined || route === 'ambiguous-case') throw new Error('no route');
  exchange.route = route;
  const parsed = parseLimitOverrides(overrides);
  exchange.identity = parsed === undefined ? { subject, plan: 'small' } : { subject, plan: 'small', overrides: parsed };
  return exchange;
}

describe('the limit step (in process, without the composition root)', () => {
  it('admits synchronously on the memory store, with the IETF headers and a receipt, then denies the third request of the minute', () => {
    const step = limitStep();
    for (const remaining of [1, 0]) {
      const exchange = exchangeOf('acme');
      // No promise: the memory store answered without I/O.
      expect(step(exchange)).toBeUndefined();
      expect(exchange.decision).toBe('allowed');
      expect(exchange.receipt?.cost).toBe(1);
      expect(exchange.rateLimitHeaders).toEqual([
        ['RateLimit-Policy', '"minute";q=2;w=60, "hour";q=100;w=3600'],
        ['RateLimit', `"minute";r=${remaining};t=45, "hour";r=${99 - (1 - remaining)};t=1785`],
      ]);
    }
    const denied = exchangeOf('acme');
    let refusal: unknown;
    try {
      step(denied);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(GatewayError);
    expect((refusal as GatewayError).code).toBe('rate_limited');
    expect((refusal as GatewayError).headers).toContainEqual(['retry-after', '45']);
    expect(denied.decision).toBe('denied');
  });

  it("applies a subject's overrides, the same on every request, without touching the plan for others", () => {
    const step = limitStep();
    const overrides = { limits: { minute: 5 } };
    const first = exchangeOf('big-customer', overrides);
    step(first);
    const second = exchangeOf('big-customer', overrides);
    step(second);
    expect(second.rateLimitHeaders[0]).toEqual(['RateLimit-Policy', '"minute";q=5;w=60, "hour";q=100;w=3600']);
    expect(second.rateLimitHeaders[1]).toEqual(['RateLimit', '"minute";r=3;t=45, "hour";r=98;t=1785']);
    const other = exchangeOf('acme');
    step(other);
    expect(other.rateLimitHeaders[0]).toEqual(['RateLimit-Policy', '"minute";q=2;w=60, "hour";q=100;w=3600']);
  });

  it('counts each denial of a subject in its minute, and nothing for an admitted request', () => {
    const denials = new DenialTally(100);
    const step = limitStep({ denials });
    for (let i = 0; i < 2; i++) step(exchangeOf('acme'));
    expect(denials.drain()).toEqual([]);
    for (let i = 0; i < 3; i++) expect(() => step(exchangeOf('acme'))).toThrow(GatewayError);
    expect(denials.drain()).toEqual([{ subject: 'acme', minuteMs: NOW - 15_000, count: 3, plan: 'small', abuse: undefined }]);
  });

  it('refuses a blocked subject with 403 subject_blocked and Retry-After before any store call, and admits it once the block ends', () => {
    const blocked = new BlockedSubjects();
    const step = limitStep({ blocked });
    blocked.set('acme', NOW + 90_500);
    const exchange = exchangeOf('acme');
    let refusal: unknown;
    try {
      step(exchange);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(GatewayError);
    expect((refusal as GatewayError).status).toBe(403);
    expect((refusal as GatewayError).code).toBe('subject_blocked');
    expect((refusal as GatewayError).headers).toEqual([['retry-after', '91']]);
    expect((refusal as GatewayError).extensions).toEqual({ blocked_until: new Date(NOW + 90_500).toISOString() });
    expect(exchange.receipt).toBeUndefined();
    // Others are not affected; an ended block is forgotten.
    step(exchangeOf('other'));
    blocked.set('acme', NOW - 1);
    step(exchangeOf('acme'));
    expect(blocked.size).toBe(0);
  });
});
