import { h, replaceChildren } from '../shared/dom.js';
import { card } from '../shared/layout.js';
import { type AdminClient, failure } from './admin-client.js';
import type { Page, Subject } from './types.js';

/** A panel fed by one operator view of the admin API (`{ items, next_cursor }`). */
interface ViewPanel {
  readonly id: string;
  readonly title: string;
  readonly path: string;
  readonly empty: string;
}

/**
 * The operator views. Their endpoints may be missing on an older gateway:
 * a 404 shows "not available" and the rest of the page works.
 */
const PANELS: readonly ViewPanel[] = [
  { id: 'near-limits', title: 'Subjects near their limits', path: '/admin/views/near-limits?threshold=80', empty: 'No subject is at 80 % of a limit.' },
  { id: 'top-consumers', title: 'Top consumers this period', path: '/admin/views/top-consumers?period=current', empty: 'No usage this period yet.' },
  { id: 'denials', title: 'Denials in the last hour', path: '/admin/views/denials?window=1h', empty: 'No request was denied in the last hour.' },
  { id: 'events', title: 'Recent quota events', path: '/admin/events', empty: 'No quota event yet.' },
];

/** The overview: the four view panels, then the subjects with a form to open one by id. */
export function overview(client: AdminClient): HTMLElement {
  const grid = h('div', { class: 'panel-grid' }, ...PANELS.map((panel) => viewPanel(client, panel)));
  return h('div', { class: 'overview' }, grid, subjectsPanel(client));
}

function viewPanel(client: AdminClient, panel: ViewPanel): HTMLElement {
  const body = h('div', { class: 'panel-body' }, h('p', { class: 'empty' }, 'Loading…'));
  const section = card(panel.title, { id: `panel-${panel.id}`, class: 'panel' }, body);
  void client.get<Page<Record<string, unknown>>>(panel.path).then((result) => {
    if (result.ok) {
      section.dataset.state = 'ready';
      replaceChildren(body, result.body.items.length === 0 ? h('p', { class: 'empty' }, panel.empty) : itemTable(result.body.items));
    } else if (result.status === 404) {
      section.dataset.state = 'not-available';
      replaceChildren(body, h('p', { class: 'not-available' }, 'Not available on this gateway.'));
    } else {
      section.dataset.state = 'error';
      replaceChildren(body, h('p', { class: 'error', role: 'alert' }, failure(result)));
    }
  });
  return section;
}

/** A table of whatever fields the items have (at most 6 columns); a `subject` field links to its detail. */
function itemTable(items: readonly Record<string, unknown>[]): HTMLElement {
  const columns = [...new Set(items.slice(0, 20).flatMap((item) => Object.keys(item)))].slice(0, 6);
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, ...columns.map((column) => h('th', {}, column.replaceAll('_', ' '))))),
    h('tbody', {}, ...items.slice(0, 20).map((item) => h('tr', {}, ...columns.map((column) => cell(column, item[column]))))),
  );
}

function cell(column: string, value: unknown): HTMLElement {
  if (column === 'subject' && typeof value === 'string') return h('td', {}, subjectLink(value));
  if (typeof value === 'number') return h('td', { class: 'num' }, String(value));
  if (value === null || value === undefined) return h('td', {}, '–');
  return h('td', {}, typeof value === 'object' ? JSON.stringify(value) : String(value));
}

/** A link to a subject's detail (`#subject=<id>`, so a reload stays there). */
export function subjectLink(id: string): HTMLElement {
  return h('a', { href: `#subject=${encodeURIComponent(id)}`, class: 'subject-link' }, id);
}

function subjectsPanel(client: AdminClient): HTMLElement {
  const input = h('input', { id: 'open-subject-id', placeholder: 'subject id', required: true, autocomplete: 'off' });
  const open = h(
    'form',
    {
      id: 'open-subject',
      class: 'inline-form',
      onsubmit: (event: Event) => {
        event.preventDefault();
        if (input.value.trim() !== '') location.hash = `subject=${encodeURIComponent(input.value.trim())}`;
      },
    },
    input,
    h('button', { type: 'submit' }, 'Open'),
  );
  const body = h('div', { class: 'panel-body' }, h('p', { class: 'empty' }, 'Loading…'));
  void client.get<Page<Subject>>('/admin/subjects?limit=50').then((result) => {
    if (!result.ok) {
      replaceChildren(body, h('p', { class: 'error', role: 'alert' }, failure(result)));
      return;
    }
    if (result.body.items.length === 0) {
      replaceChildren(body, h('p', { class: 'empty' }, 'No subject yet: create one with POST /admin/subjects or `quotagate subjects create`.'));
      return;
    }
    replaceChildren(
      body,
      h(
        'table',
        { id: 'subjects' },
        h('thead', {}, h('tr', {}, h('th', {}, 'subject'), h('th', {}, 'plan'), h('th', {}, 'status'), h('th', {}, 'created'))),
        h(
          'tbody',
          {},
          ...result.body.items.map((subject) =>
            h(
              'tr',
              { 'data-subject': subject.id },
              h('td', {}, subjectLink(subject.id)),
              h('td', {}, subject.plan),
              h('td', {}, subject.suspended_at === null ? 'active' : 'suspended'),
              h('td', {}, subject.created_at.slice(0, 10)),
            ),
          ),
        ),
      ),
      result.body.next_cursor ? h('p', { class: 'help' }, 'The first 50 subjects; open any other by id.') : null,
    );
  });
  return card('Subjects', { id: 'panel-subjects' }, open, body);
}
