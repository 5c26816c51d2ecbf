import type { RouteConfig } from '../config/schema.js';

/** A configured route, ready for matching. */
export interface CompiledRoute {
  /** Position in `routes:`; the lowest matching index wins. */
  readonly index: number;
  readonly config: RouteConfig;
}

interface TrieNode {
  readonly children: Map<string, TrieNode>;
  /** Routes whose prefix ends exactly at this node, in config order. */
  readonly routes: CompiledRoute[];
}

function newNode(): TrieNode {
  return { children: new Map(), routes: [] };
}

function segmentsOf(path: string): string[] {
  return path.split('/').filter((segment) => segment !== '');
}

/**
 * First-match routing on method and path prefix, without scanning every
 * route: prefixes are kept in a trie of path segments, so a lookup costs the
 * depth of the path plus the routes sharing a prefix, however many routes are
 * configured. Prefixes match whole segments: `/api` matches `/api` and
 * `/api/v1`, not `/apix`; a trailing `/` in a prefix makes no difference.
 */
export class RouteTable {
  private readonly root = newNode();

  constructor(routes: readonly RouteConfig[]) {
    routes.forEach((config, index) => {
      let node = this.root;
      for (const segment of segmentsOf(config.path_prefix)) {
        let child = node.children.get(segment);
        if (child === undefined) {
          child = newNode();
          node.children.set(segment, child);
        }
        node = child;
      }
      node.routes.push({ index, config });
    });
  }

  /** The first configured route matching `method` and `path` (no query), if any. */
  match(method: string, path: string): CompiledRoute | undefined {
    let best = firstForMethod(this.root, method);
    let node: TrieNode | undefined = this.root;
    let start = 1;
    while (node !== undefined && start <= path.length) {
      let end = path.indexOf('/', start);
      if (end === -1) end = path.length;
      if (end > start) {
        node = node.children.get(path.slice(start, end));
        if (node === undefined) break;
        const candidate = firstForMethod(node, method);
        if (candidate !== undefined && (best === undefined || candidate.index < best.index)) best = candidate;
      }
      start = end + 1;
    }
    return best;
  }
}

function firstForMethod(node: TrieNode, method: string): CompiledRoute | undefined {
  for (const route of node.routes) {
    if (route.config.methods === undefined || (route.config.methods as readonly string[]).includes(method)) {
      return route;
    }
  }
  return undefined;
}
