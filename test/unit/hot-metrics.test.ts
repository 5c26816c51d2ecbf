import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HotCounter, HotHistogram } from '../../src/metrics/hot-metrics.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];

/** The same definition on prom-client and on the hot metrics, each in a registry of its own. */
function pair() {
  const reference = new Registry();
  const hot = new Registry();
  const definition = { name: 'demo_duration_seconds', help: 'A demo.', labelNames: ['route', 'outcome'] as const, buckets: BUCKETS };
  const counterDefinition = { name: 'demo_requests_total', help: 'Demo requests.', labelNames: ['route'] as const };
  return {
    reference,
    hot,
    referenceHistogram: new Histogram({ ...definition, labelNames: [...definition.labelNames], registers: [reference] }),
    hotHistogram: new HotHistogram({ ...definition, registers: [hot] }),
    referenceCounter: new Counter({ ...counterDefinition, labelNames: [...counterDefinition.labelNames], registers: [reference] }),
    hotCounter: new HotCounter({ ...counterDefinition, registers: [hot] }),
  };
}

describe('hot metrics', () => {
  it('expose exactly what prom-client exposes for the same observations', async () => {
    const m = pair();
    const observations: [string, string, number][] = [
      ['api', 'forwarded', 0.0004],
      ['api', 'forwarded', 0.001],
      ['api', 'forwarded', 0.05],
      ['api', 'rate_limited', 0.2],
      ['search', 'forwarded', 7],
    ];
    const cell = m.hotHistogram.labels('api', 'forwarded');
    for (const [route, outcome, seconds] of observations) {
      m.referenceHistogram.observe({ route, outcome }, seconds);
      if (route === 'api' && outcome === 'forwarded') cell.observe(seconds);
      else m.hotHistogram.observe({ route, outcome }, seconds);
      m.referenceCounter.inc({ route });
      m.hotCounter.labels(route).inc();
    }
    m.referenceCounter.inc({ route: 'search' }, 3);
    m.hotCounter.inc({ route: 'search' }, 3);
    expect(await m.hot.metrics()).toBe(await m.reference.metrics());
  });

  it('keeps one cell per label combination', () => {
    const m = pair();
    expect(m.hotCounter.labels('api')).toBe(m.hotCounter.labels('api'));
    expect(m.hotCounter.labels('api')).not.toBe(m.hotCounter.labels('search'));
  });

  it('counts an observation above every bound only in +Inf, _sum and _count', async () => {
    const m = pair();
    m.hotHistogram.labels('api', 'forwarded').observe(5);
    const text = await m.hot.metrics();
    expect(text).toContain('demo_duration_seconds_bucket{le="1",route="api",outcome="forwarded"} 0');
    expect(text).toContain('demo_duration_seconds_bucket{le="+Inf",route="api",outcome="forwarded"} 1');
    expect(text).toContain('demo_duration_seconds_sum{route="api",outcome="forwarded"} 5');
  });
});
