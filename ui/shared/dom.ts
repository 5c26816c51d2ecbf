/**
 * A few DOM helpers, so pages are plain functions building elements. Never
 * an HTML string (no innerHTML: text is always text) and never a `style`
 * attribute (the Content-Security-Policy forbids inline styles; a width set
 * through the CSSOM, `element.style.width`, is allowed).
 */

type Child = Node | string | number | null | undefined | false;
type Handler = (event: Event) => void;
/** Attributes by name; `class` sets the class list, `on<event>` adds a listener, false/undefined leaves it out. */
export type Props = Record<string, string | number | boolean | Handler | undefined>;

/** Creates `<tag>` with `props` and `children` (strings become text nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'class') element.className = String(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

/** Appends `children` to `parent`, skipping the empty ones. */
export function append(parent: Node, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

/** Replaces every child of `parent` with `children`. */
export function replaceChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

/** The element with `id`, of the expected type; throws when the page was built wrong. */
export function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`#${id} is missing`);
  return element;
}

/** The page's mount point (`<main id="app">` in the served HTML). */
export function appRoot(): HTMLElement {
  return byId('app', HTMLElement);
}
