/**
 * The customer dashboard (`/_quotagate/dashboard`): sign in with an API
 * key, then the plan, a bar per window and quota, credits, the last 30 days
 * and the plan's upgrade link, from the gateway's own endpoints. The key is
 * sent only as `X-API-Key` by fetch() to this origin, and kept in this tab's
 * sessionStorage (ui/shared/session.ts says why).
 */
import './customer.css';
import { requestJson, type ApiResult } from '../shared/api.js';
import { appRoot, h, replaceChildren } from '../shared/dom.js';
import { historyChart } from '../shared/history-chart.js';
import { card, errorLine, isWebUrl, topBar } from '../shared/layout.js';
import { sessionCredential } from '../shared/session.js';
import { showSignInForm } from '../shared/sign-in.js';
import type { CataloguePlan, HistoryBody, PlanCatalogue, UsageBody } from '../shared/types.js';
import { creditList, usageBars, usageLevel } from '../shared/usage-bars.js';

const credential = sessionCredential('quotagate.dashboard.api_key');
const root = appRoot();

const stored = credential.read();
if (stored === undefined) showSignIn();
else void showDashboard(stored);

/** The sign-in form; `problem` is the error of the last attempt. */
function showSignIn(problem?: string): void {
  showSignInForm(root, {
    field: 'api-key',
    title: 'Your API usage',
    label: 'API key',
    help: 'The key stays in this browser tab and is sent only to this gateway, as a header. Closing the tab signs you out.',
    placeholder: 'qg_…',
    onSecret: (key) => void showDashboard(key),
    problem,
  });
}

/** Reads the usage with `key`; on success renders the dashboard, on a refused key the sign-in form with the reason. */
async function showDashboard(key: string): Promise<void> {
  root.setAttribute('aria-busy', 'true');
  const headers = { 'x-api-key': key };
  const usage = await requestJson<UsageBody>('/_quotagate/usage', { headers });
  if (!usage.ok) {
    root.removeAttribute('aria-busy');
    if (usage.status === 401 || usage.status === 403 || usage.status === 429) {
      credential.forget();
      showSignIn(`This key was not accepted: ${usage.detail} (${usage.code})`);
    } else {
      replaceChildren(root, topBar('API usage', signOutButton()), errorLine('load-error', `Your usage could not be read: ${usage.detail} (${usage.code})`), refreshButton(key));
    }
    return;
  }
  credential.write(key);
  const [catalogue, history] = await Promise.all([
    requestJson<PlanCatalogue>('/_quotagate/plans', { headers: {} }),
    requestJson<HistoryBody>('/_quotagate/usage/history?granularity=day&limit=100', { headers }),
  ]);
  const plan = catalogue.ok ? catalogue.body.plans.find((candidate) => candidate.name === usage.body.plan) : undefined;
  render(key, usage.body, plan, history);
  root.removeAttribute('aria-busy');
}

function render(key: string, usage: UsageBody, plan: CataloguePlan | undefined, history: ApiResult<HistoryBody>): void {
  const displayName = plan?.display_name ?? usage.plan;
  const nearLimit = usage.policies.some((policy) => usageLevel(policy.percent) !== 'ok');
  const upgrade = isWebUrl(plan?.upgrade_url)
    ? h('a', { class: `upgrade${nearLimit ? ' prominent' : ''}`, id: 'upgrade', href: plan.upgrade_url, target: '_blank', rel: 'noopener noreferrer' }, nearLimit ? 'Running low? Upgrade your plan' : 'Upgrade your plan')
    : null;
  const credits = creditList(usage.credits);
  replaceChildren(
    root,
    topBar('API usage', refreshButton(key), signOutButton()),
    h(
      'section',
      { class: 'card plan-card' },
      h('div', {}, h('p', { class: 'eyebrow' }, 'Your plan'), h('h1', { id: 'plan-name', 'data-plan': usage.plan }, displayName)),
      upgrade,
    ),
    card('Limits', { id: 'limits' }, usageBars(usage.policies)),
    credits === null ? null : card('Credits', { id: 'credits' }, credits),
    card('Last 30 days', { id: 'history' }, historyOf(history)),
    h('p', { class: 'footnote', id: 'updated' }, `Updated ${new Date().toISOString().slice(11, 19)} UTC · times are UTC · counts are in cost units`),
  );
}

function historyOf(history: ApiResult<HistoryBody>): HTMLElement {
  if (!history.ok) {
    return h('p', { class: 'not-available' }, history.code === 'usage_unavailable' ? 'History is not available on this gateway.' : `History could not be read (${history.code}).`);
  }
  return historyChart(history.body.items, { title: 'Requests and metered units per day' });
}

function refreshButton(key: string): HTMLElement {
  return h('button', { id: 'refresh', type: 'button', onclick: () => void showDashboard(key) }, 'Refresh');
}

function signOutButton(): HTMLElement {
  return h(
    'button',
    {
      id: 'sign-out',
      type: 'button',
      onclick: () => {
        credential.forget();
        showSignIn();
      },
    },
    'Sign out',
  );
}
