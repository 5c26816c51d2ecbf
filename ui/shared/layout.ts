import { h } from './dom.js';

/** A titled card of a page. */
export function card(title: string, props: { id?: string; class?: string }, ...children: Array<Node | string | null>): HTMLElement {
  return h('section', { class: `card ${props.class ?? ''}`.trim(), id: props.id }, h('h2', {}, title), ...children);
}

/** The bar across the top: the page's name and its buttons. */
export function topBar(title: string, ...actions: Array<Node | null>): HTMLElement {
  return h('header', { class: 'topbar' }, h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, 'qg'), title), h('div', { class: 'actions' }, ...actions));
}

/** An error line (role alert, so screen readers say it). */
export function errorLine(id: string | undefined, text: string): HTMLElement {
  return h('p', { class: 'error', role: 'alert', id }, text);
}

/** Whether `url` may be a link target: http(s) only (never `javascript:`). */
export function isWebUrl(url: string | null | undefined): url is string {
  if (url === null || url === undefined) return false;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:';
  } catch {
    return false;
  }
}
