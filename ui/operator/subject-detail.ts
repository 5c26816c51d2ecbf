import { h, replaceChildren } from '../shared/dom.js';
import { instant } from '../shared/format.js';
import { historyChart } from '../shared/history-chart.js';
import { card } from '../shared/layout.js';
import type { HistoryBody, UsageBody } from '../shared/types.js';
import { creditList, usageBars } from '../shared/usage-bars.js';
import { type AdminClient, failure, subjectPath } from './admin-client.js';
import type { ApiKey, CreditGrant, IssuedKey, Page, Subject } from './types.js';

/**
 * One subject: its usage (and reset), keys (create, rotate, revoke), limit
 * overrides, credit grants and history. A plain key from create or rotate is
 * shown once, in this view only: it is kept nowhere, so navigating away or
 * reloading drops it.
 */
export function subjectDetail(client: AdminClient, id: string): HTMLElement {
  const view = h('div', { class: 'subject-detail', 'data-subject': id }, h('p', { class: 'empty' }, 'Loading…'));
  void client.get<Subject>(subjectPath(id)).then((result) => {
    if (!result.ok) {
      replaceChildren(view, backLink(), h('p', { class: 'error', role: 'alert', id: 'subject-error' }, `Subject ${id}: ${failure(result)}`));
      return;
    }
    const subject = result.body;
    const usage = usageCard(client, id);
    replaceChildren(
      view,
      backLink(),
      h(
        'section',
        { class: 'card subject-head' },
        h('div', {}, h('p', { class: 'eyebrow' }, 'Subject'), h('h1', { id: 'subject-id' }, subject.id)),
        h(
          'dl',
          {},
          h('dt', {}, 'Plan'),
          h('dd', { id: 'subject-plan' }, subject.plan),
          h('dt', {}, 'Status'),
          h('dd', {}, subject.suspended_at === null ? 'active' : `suspended ${instant(subject.suspended_at)}`),
          h('dt', {}, 'Created'),
          h('dd', {}, instant(subject.created_at)),
        ),
      ),
      usage.element,
      keysCard(client, id),
      h('div', { class: 'two-columns' }, overridesCard(client, subject), creditsCard(client, id, usage.reload)),
      historyCard(client, id),
    );
  });
  return view;
}

function backLink(): HTMLElement {
  return h('a', { href: '#', class: 'back', id: 'back' }, '← Overview');
}

/** A line under a form saying how the last action went. */
function outcome(): { element: HTMLElement; show(text: string, isError: boolean): void } {
  const element = h('p', { class: 'outcome', role: 'status' });
  return {
    element,
    show(text, isError) {
      element.textContent = text;
      element.className = isError ? 'outcome error' : 'outcome notice';
    },
  };
}

function usageCard(client: AdminClient, id: string): { element: HTMLElement; reload(): void } {
  const body = h('div', {}, h('p', { class: 'empty' }, 'Loading…'));
  const status = outcome();
  const reload = (): void => {
    void client.get<UsageBody>(subjectPath(id, '/usage')).then((result) => {
      if (!result.ok) replaceChildren(body, h('p', { class: 'error', role: 'alert' }, failure(result)));
      else replaceChildren(body, usageBars(result.body.policies), creditList(result.body.credits));
    });
  };
  const reset = h(
    'button',
    {
      id: 'reset-usage',
      type: 'button',
      class: 'danger',
      onclick: () => {
        if (!window.confirm(`Reset every window and quota of ${id}? Its counters start again from zero.`)) return;
        void client.post<{ reset: string[] }>(subjectPath(id, '/reset')).then((result) => {
          status.show(result.ok ? `Reset: ${result.body.reset.join(', ') || 'nothing to reset'}.` : failure(result), !result.ok);
          reload();
        });
      },
    },
    'Reset usage',
  );
  reload();
  const element = card('Usage now', { id: 'usage' }, body, h('div', { class: 'card-actions' }, reset, h('button', { type: 'button', id: 'refresh-usage', onclick: reload }, 'Refresh')), status.element);
  return { element, reload };
}

function keysCard(client: AdminClient, id: string): HTMLElement {
  const table = h('div', {}, h('p', { class: 'empty' }, 'Loading…'));
  const issued = h('div', { id: 'issued-key' });
  const status = outcome();
  const showIssued = (key: IssuedKey, verb: string): void => {
    replaceChildren(
      issued,
      h(
        'div',
        { class: 'new-key', id: 'new-key', role: 'status' },
        h('p', {}, h('strong', {}, `${verb} key ${key.name ?? key.id}.`), ' Copy it now: it will not be shown again.'),
        h('code', { id: 'new-key-value' }, key.key),
        h(
          'button',
          {
            type: 'button',
            class: 'small',
            onclick: () => {
              void navigator.clipboard?.writeText(key.key).then(() => status.show('Copied.', false), () => status.show('Copy it by hand: the clipboard is not available.', true));
            },
          },
          'Copy',
        ),
      ),
    );
  };
  const reload = (): void => {
    void client.get<Page<ApiKey>>(subjectPath(id, '/keys')).then((result) => {
      if (!result.ok) replaceChildren(table, h('p', { class: 'error', role: 'alert' }, failure(result)));
      else replaceChildren(table, keyTable(result.body.items));
    });
  };
  const act = (key: ApiKey, action: 'revoke' | 'rotate'): void => {
    const label = key.name ?? key.id;
    const question = action === 'revoke' ? `Revoke key ${label}? Requests with it are refused at once.` : `Rotate key ${label}? The old key stops working now.`;
    if (!window.confirm(question)) return;
    void client.post<ApiKey | IssuedKey>(`/admin/keys/${encodeURIComponent(key.id)}/${action}`).then((result) => {
      if (!result.ok) status.show(failure(result), true);
      else if (action === 'rotate' && 'key' in result.body) showIssued(result.body, 'Rotated:');
      else status.show(`Revoked key ${label}.`, false);
      reload();
    });
  };
  const keyTable = (keys: readonly ApiKey[]): HTMLElement => {
    if (keys.length === 0) return h('p', { class: 'empty' }, 'No key yet.');
    return h(
      'table',
      { id: 'keys' },
      h('thead', {}, h('tr', {}, h('th', {}, 'name'), h('th', {}, 'prefix'), h('th', {}, 'created'), h('th', {}, 'last used'), h('th', {}, 'status'), h('th', {}, ''))),
      h(
        'tbody',
        {},
        ...keys.map((key) => {
          const state = key.revoked_at !== null ? 'revoked' : key.expires_at !== null && Date.parse(key.expires_at) <= Date.now() ? 'expired' : 'active';
          return h(
            'tr',
            { 'data-key-id': key.id, 'data-state': state },
            h('td', {}, key.name ?? '–'),
            h('td', { class: 'mono' }, `${key.prefix}…`),
            h('td', {}, key.created_at.slice(0, 10)),
            h('td', {}, key.last_used_at === null ? 'never' : instant(key.last_used_at)),
            h('td', { class: `key-state state-${state}` }, state),
            h(
              'td',
              { class: 'row-actions' },
              state === 'active' ? h('button', { type: 'button', class: 'small rotate', onclick: () => act(key, 'rotate') }, 'Rotate') : null,
              state === 'active' ? h('button', { type: 'button', class: 'small danger revoke', onclick: () => act(key, 'revoke') }, 'Revoke') : null,
            ),
          );
        }),
      ),
    );
  };
  const name = h('input', { id: 'new-key-name', placeholder: 'key name, e.g. ci', maxlength: 200, autocomplete: 'off' });
  const create = h(
    'form',
    {
      id: 'create-key',
      class: 'inline-form',
      onsubmit: (event: Event) => {
        event.preventDefault();
        const body = name.value.trim() === '' ? {} : { name: name.value.trim() };
        void client.post<IssuedKey>(subjectPath(id, '/keys'), body).then((result) => {
          if (!result.ok) status.show(failure(result), true);
          else {
            name.value = '';
            showIssued(result.body, 'Created');
          }
          reload();
        });
      },
    },
    name,
    h('button', { type: 'submit', class: 'primary', id: 'create-key-button' }, 'Create key'),
  );
  reload();
  return card('API keys', { id: 'keys-card' }, create, issued, status.element, table);
}

function overridesCard(client: AdminClient, subject: Subject): HTMLElement {
  const status = outcome();
  const text = h('textarea', { id: 'overrides', spellcheck: 'false', 'aria-label': 'limit overrides (JSON)' });
  text.value = subject.overrides === null ? '' : JSON.stringify(subject.overrides, null, 2);
  const save = (overrides: unknown): void => {
    void client.put<Subject>(subjectPath(subject.id, '/overrides'), { overrides }).then((result) => {
      if (!result.ok) status.show(failure(result), true);
      else {
        text.value = result.body.overrides === null ? '' : JSON.stringify(result.body.overrides, null, 2);
        status.show(result.body.overrides === null ? 'Overrides removed: the plan applies.' : 'Overrides saved.', false);
      }
    });
  };
  const form = h(
    'form',
    {
      id: 'overrides-form',
      onsubmit: (event: Event) => {
        event.preventDefault();
        if (text.value.trim() === '') return save(null);
        try {
          save(JSON.parse(text.value) as unknown);
        } catch {
          status.show('Not valid JSON, e.g. {"limits": {"hour": 5000}}.', true);
        }
      },
    },
    h('p', { class: 'help' }, 'Limits that replace the plan\u2019s for this subject, e.g. {"limits": {"hour": 5000}, "quotas": {"search": {"month": 20000}}}. Empty: none.'),
    text,
    h('div', { class: 'card-actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save overrides'), h('button', { type: 'button', onclick: () => save(null) }, 'Remove')),
  );
  return card('Limit overrides', { id: 'overrides-card' }, form, status.element);
}

function creditsCard(client: AdminClient, id: string, onGranted: () => void): HTMLElement {
  const status = outcome();
  const metric = h('input', { id: 'credit-metric', placeholder: 'metric, e.g. search', required: true, autocomplete: 'off' });
  const amount = h('input', { id: 'credit-amount', type: 'number', min: 1, step: 1, placeholder: 'amount', required: true });
  const reason = h('input', { id: 'credit-reason', placeholder: 'reason (optional)', maxlength: 500, autocomplete: 'off' });
  const form = h(
    'form',
    {
      id: 'grant-credits',
      class: 'stacked-form',
      onsubmit: (event: Event) => {
        event.preventDefault();
        const body = { metric: metric.value.trim(), amount: Number(amount.value), ...(reason.value.trim() === '' ? {} : { reason: reason.value.trim() }) };
        void client.post<CreditGrant>(subjectPath(id, '/credits'), body).then((result) => {
          status.show(result.ok ? `Granted ${result.body.amount} ${result.body.metric} credits.` : failure(result), !result.ok);
          if (result.ok) {
            amount.value = '';
            reason.value = '';
            onGranted();
          }
        });
      },
    },
    h('p', { class: 'help' }, 'Prepaid units of a metered metric, spent once its quota is used up (on plans whose credits cover it).'),
    metric,
    amount,
    reason,
    h('button', { type: 'submit', class: 'primary' }, 'Grant credits'),
  );
  return card('Grant credits', { id: 'credits-card' }, form, status.element);
}

function historyCard(client: AdminClient, id: string): HTMLElement {
  const body = h('div', {}, h('p', { class: 'empty' }, 'Loading…'));
  void client.get<HistoryBody>(subjectPath(id, '/usage/history?granularity=day&limit=100')).then((result) => {
    replaceChildren(body, result.ok ? historyChart(result.body.items, { title: 'Per day, last 30 days' }) : h('p', { class: 'not-available' }, `History is not available: ${failure(result)}`));
  });
  return card('History', { id: 'history' }, body);
}
