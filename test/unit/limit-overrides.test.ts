import { describe, expect, it } from 'vitest';
import { buildPlans } from '../../src/config/plans.js';
import { applyLimitOverrides, parseLimitOverrides } from '../../src/core/limit-overrides.js';
import { policiesFor } from '../../src/core/plan.js';

const plans = buildPlans({
  pro: { limits: { minute: 10, hour: 100 }, quotas: { search: { month: 1000 } }, quota_status: 402, upgrade_url: 'https://example.com/up', public: true, mode: 'enforce', limit_by: 'subject' },
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
