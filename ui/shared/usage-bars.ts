import { h } from './dom.js';
import { count, duration, instant, percent, policyLabel } from './format.js';
import type { CreditBalance, PolicyUsage } from './types.js';

/** How full a window is: the class a bar gets, and the warning it shows (none below 80 %). */
export type UsageLevel = 'ok' | 'warning' | 'critical' | 'exhausted';

/** 80 % and 95 %, the gateway's default quota-event thresholds, and the limit itself. */
export function usageLevel(percentUsed: number): UsageLevel {
  if (percentUsed >= 100) return 'exhausted';
  if (percentUsed >= 95) return 'critical';
  if (percentUsed >= 80) return 'warning';
  return 'ok';
}

const WARNINGS: Readonly<Record<Exclude<UsageLevel, 'ok'>, string>> = {
  warning: 'Over 80 % of this limit is used.',
  critical: 'Over 95 % of this limit is used: requests will soon be refused.',
  exhausted: 'This limit is reached: requests are refused until it resets.',
};

/**
 * One bar per window and quota: used / limit, percent, the reset, and from
 * 80 % a warning (class `level-warning`, `level-critical` from 95 %,
 * `level-exhausted` at the limit). Numbers are the API's, unrounded but for
 * the percent (one decimal).
 */
export function usageBars(policies: readonly PolicyUsage[]): HTMLElement {
  if (policies.length === 0) return h('p', { class: 'empty' }, 'This plan sets no limits.');
  return h('div', { class: 'usage-bars' }, ...policies.map(usageBar));
}

function usageBar(policy: PolicyUsage): HTMLElement {
  const level = usageLevel(policy.percent);
  const fill = h('div', { class: 'fill' });
  // CSSOM, not a style attribute: allowed by the page's CSP.
  fill.style.width = `${Math.min(100, Math.max(0, policy.percent))}%`;
  const reset =
    policy.reset_at === null
      ? 'Never resets (a lifetime quota).'
      : `Resets in ${duration(policy.reset_seconds)} (${instant(policy.reset_at)}).`;
  return h(
    'article',
    { class: `usage-bar level-${level}`, 'data-policy': policy.name },
    h(
      'header',
      {},
      h('h3', {}, policyLabel(policy.name, policy.window, policy.kind)),
      h(
        'span',
        { class: 'usage-numbers' },
        h('span', { class: 'usage-used' }, count(policy.used)),
        ' / ',
        h('span', { class: 'usage-limit' }, count(policy.limit)),
        h('span', { class: 'usage-percent' }, percent(policy.percent)),
      ),
    ),
    h(
      'div',
      { class: 'track', role: 'progressbar', 'aria-label': policy.name, 'aria-valuemin': 0, 'aria-valuemax': policy.limit, 'aria-valuenow': policy.used },
      fill,
    ),
    h(
      'p',
      { class: 'usage-meta' },
      h('span', { class: 'usage-reset' }, reset),
      policy.overage !== undefined && policy.overage > 0 ? h('span', { class: 'usage-overage' }, `${count(policy.overage)} past the limit, billed as overage.`) : null,
    ),
    level === 'ok' ? null : h('p', { class: 'usage-warning', role: 'status' }, WARNINGS[level]),
  );
}

/** Prepaid credits per metric, when the plan has any. */
export function creditList(credits: readonly CreditBalance[] | undefined): HTMLElement | null {
  if (credits === undefined || credits.length === 0) return null;
  return h(
    'ul',
    { class: 'credits' },
    ...credits.map((credit) =>
      h('li', { 'data-metric': credit.metric }, h('span', { class: 'credit-metric' }, credit.metric), h('span', { class: 'credit-balance' }, `${count(credit.balance)} credits left`)),
    ),
  );
}
