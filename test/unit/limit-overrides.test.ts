import { describe, expect, it } from 'vitest';
import type { Policy } from '../../src/core/policy.js';
import { buildPlans } from '../../src/config/plans.js';
import { applyLimitOverrides, parseLimitOverrides } from '../../src/core/limit-overrides.js';
import { policiesFor } from '../../src/core/plan.js';

const plans = buildPlans({
  pro: { limits: { minute: 10, hour: 100 }, quotas: { search: { month: 1000 } }, quota_status: 402, upgrade_url: 'https://example.com/up', public: true, mode: 'enforce', thresholds: [80, 95, 100], limit_by: 'subject' },
});
const pro = plans.get('pro')!;
const summary = (policies: readonly { name: string; limit: number }[]) => policies.map((p) => `${p.name}=${p.limit}`);

describe('parseLimitOverrides', () => {
  it('reads windows and quotas shaped like a plan', () => {
    expect(parseLimitOverrides({ limits: { hour: 5 }, quotas: { search: { month: 7 } } })).toEqual({
      limits: { hour: 5 },
      quotas: { search: { month: 7 } },
    });
  });

  it('holds nothing for null, an empty object, or only bad entries', () => {
    expect(parseLimitOverrides(null)).toBeUndefined();
    expect(parseLimitOverrides({})).toBeUndefined();
    expect(parseLimitOverrides({ limits: { hour: 0, week: 5, day: 1.5, minute: '9' }, quotas: { 'Bad Name': { month: 1 }, x: 'y' } })).toBeUndefined();
  });

  it('ignores bad entries but keeps good ones beside them', () => {
    expect(parseLimitOverrides({ limits: { hour: -1, day: 50 }, quotas: { search: { month: 3, year: 9 } } })).toEqual({
      limits: { day: 50 },
      quotas: { search: { month: 3 } },
    });
  });
});

describe('applyLimitOverrides', () => {
  it('replaces an overridden window and keeps the others, shortest first', () => {
    const plan = applyLimitOverrides(pro, parseLimitOverrides({ limits: { hour: 5000, second: 2 } })!);
    expect(summary(plan.windows)).toEqual(['second=2', 'minute=10', 'hour=5000']);
    expect(summary(policiesFor(plan, 'search'))).toEqual(['second=2', 'minute=10', 'hour=5000', 'search.month=1000']);
  });

  it('replaces a quota and adds a metric the plan lacks', () => {
    const plan = applyLimitOverrides(pro, parseLimitOverrides({ quotas: { search: { month: 20, day: 3 }, export: { month: 4 } } })!);
    expect(summary(policiesFor(plan, 'search'))).toEqual(['minute=10', 'hour=100', 'search.day=3', 'search.month=20']);
    expect(summary(policiesFor(plan, 'export'))).toEqual(['minute=10', 'hour=100', 'export.month=4']);
    expect(plan.windows).toEqual(pro.windows);
  });

  it('keeps the plan name, quota status and upgrade URL, and leaves the plan itself alone', () => {
    const plan = applyLimitOverrides(pro, parseLimitOverrides({ limits: { minute: 1 } })!);
    expect([plan.name, plan.quotaStatus, plan.upgradeUrl]).toEqual(['pro', 402, 'https://example.com/up']);
    expect(summary(pro.windows)).toEqual(['minute=10', 'hour=100']);
  });
});

describe('thresholds', () => {
  const thresholdsOf = (policies: readonly Policy[]) => Object.fromEntries(policies.map((p) => [p.name, p.thresholds?.units ?? null]));

  it('are compiled to units of every quota window and the month window, none for shorter windows', () => {
    const compiled = buildPlans({
      team: {
        limits: { hour: 100, month: 1_001 },
        quotas: { search: { day: 10, month: 200 }, repos: { lifetime: 3 } },
        quota_status: 429,
        public: true,
        mode: 'enforce',
        limit_by: 'subject',
        thresholds: [80, 95, 100],
      },
    }).get('team')!;
    expect(thresholdsOf(policiesFor(compiled, 'search'))).toEqual({ hour: null, month: [801, 951, 1_001], 'search.day': [8, 10, 10], 'search.month': [160, 190, 200] });
    expect(thresholdsOf(policiesFor(compiled, 'repos'))).toEqual({ hour: null, month: [801, 951, 1_001], 'repos.lifetime': [3, 3, 3] });
    expect(policiesFor(compiled, 'search').at(-1)!.thresholds!.percents).toEqual([80, 95, 100]);
  });

  it('are set per window by name, default for the others, [] turning a window off', () => {
    const compiled = buildPlans({
      team: {
        limits: { month: 1_000 },
        quotas: { search: { day: 10, month: 200 } },
        quota_status: 429,
        public: true,
        mode: 'enforce',
        limit_by: 'subject',
        thresholds: { default: [50], 'search.month': [10, 90], month: [] },
      },
    }).get('team')!;
    expect(thresholdsOf(policiesFor(compiled, 'search'))).toEqual({ month: null, 'search.day': [5], 'search.month': [20, 180] });
    // Without `default` in the mapping, the others get [80, 95, 100].
    const partly = buildPlans({
      team: { limits: { month: 1_000 }, quotas: {}, quota_status: 429, public: true, mode: 'enforce', thresholds: { month: [10] }, limit_by: 'subject' },
    }).get('team')!;
    expect(thresholdsOf(partly.windows)).toEqual({ month: [100] });
  });

  it('follow an override of the limit, and reach windows an override adds', () => {
    const plan = applyLimitOverrides(pro, parseLimitOverrides({ limits: { month: 40 }, quotas: { search: { month: 20 }, export: { day: 4 } } })!);
    expect(thresholdsOf(policiesFor(plan, 'search'))).toEqual({ minute: null, hour: null, month: [32, 38, 40], 'search.month': [16, 19, 20] });
    expect(thresholdsOf(policiesFor(plan, 'export'))).toEqual({ minute: null, hour: null, month: [32, 38, 40], 'export.day': [4, 4, 4] });
  });
});

