import type { RouteConfig } from '../config/schema.js';
import type { CostSettlement } from '../core/cost-settlement.js';

/** A configured route, ready for matching. */
export interface CompiledRoute {
  /** Position in `routes:`; the lowest matching index wins. */
  readonly index: number;
  readonly config: RouteConfig;
  /** Units checked and charged at admission: `cost`, or its `reserve` when the cost is settled from the response. */
  readonly cost: number;
  /** How the charge is settled from the upstream's response; undefined for a fixed cost. */
  readonly settlement: CostSettlement | undefined;
  /** The metered quota admission checks and charges: the route's `quota`, none on a `release` route (it charges the windows only). */
  readonly chargedMetric: string | undefined;
  /** `mode: shadow`: would-be denials are forwarded and marked. */
  readonly shadow: boolean;
}

/** The admission cost and settlement of a route's `cost`, worked out once at config load. */
function compileCost(cost: RouteConfig['cost']): Pick<CompiledRoute, 'cost' | 'settlement'> {
  if (typeof cost === 'number') return { cost, settlement: undefined };
  const { header, trailer } = cost.from_response;
  const settlement: CostSettlement =
    header !== undefined
      ? { reserve: cost.reserve, from: 'header', field: header.toLowerCase() }
      : { reserve: cost.reserve, from: 'trailer', field: trailer!.toLowerCase() };
  return { cost: cost.reserve, settlement: Object.freeze(settlement) };
}

/**
 * What {@link RouteTable.match} found: a route, nothing (404), or
 * `'ambiguous-case'`: the path matches one route as written and an earlier
 * one when letters are compared without case, so a case-insensitive upstream
 * (Express, ASP.NET) would serve what the earlier route guards (400).
 */
export type RouteLookup = CompiledRoute | 'ambiguous-case' | undefined;

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

/** Whether `path` holds an ASCII capital letter. */
function hasUpperAscii(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (code >= 0x41 && code <= 0x5a) return true;
  }
  return false;
}

/** ASCII letters lower-cased; other characters (the path rule leaves only ASCII) as they are. */
function lowerAscii(path: string): string {
  return path.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

/**
 * First-match routing on method and path prefix, without scanning every
 * route: prefixes are kept in a trie of path segments, so a lookup costs the
 * depth of the path plus the routes sharing a prefix, however many routes are
 * configured. Prefixes match whole segments: `/api` matches `/api` and
 * `/api/v1`, not `/apix`; a trailing `/` in a prefix makes no difference;
 * empty segments are skipped (`/api//v1` is `/api/v1`, as nginx merges them).
 *
 * Matching is case-sensitive, and a path whose match would change were case
 * ignored is reported as `'ambiguous-case'`. That costs a second trie walk,
 * only for paths holding a capital letter (or when a prefix holds one).
 */
export class RouteTable {
  private readonly exact = newNode();
  private readonly folded = newNode();
  private readonly capitalPrefix: boolean;
  private readonly byName = new Map<string, CompiledRoute>();

  constructor(routes: readonly RouteConfig[]) {
    routes.forEach((config, index) => {
      const route: CompiledRoute = {
        index,
        config,
        ...compileCost(config.cost),
        chargedMetric: config.release === undefined ? config.quota : undefined,
        shadow: config.mode === 'shadow',
      };
      this.byName.set(config.name, route);
      insert(this.exact, config.path_prefix, route);
      insert(this.folded, lowerAscii(config.path_prefix), route);
    });
    this.capitalPrefix = routes.some((route) => hasUpperAscii(route.path_prefix));
  }

  /** The route named `name` (route names are unique), if any. */
  named(name: string): CompiledRoute | undefined {
    return this.byName.get(name);
  }

  /** The first configured route matching `method` and `path` (normalized, no query); see {@link RouteLookup}. */
  match(method: string, path: string): RouteLookup {
    const route = walk(this.exact, method, path);
    if (route === undefined || (!this.capitalPrefix && !hasUpperAscii(path))) return route;
    return walk(this.folded, method, lowerAscii(path)) === route ? route : 'ambiguous-case';
  }
}

function insert(root: TrieNode, prefix: string, route: CompiledRoute): void {
  let node = root;
  for (const segment of segmentsOf(prefix)) {
    let child = node.children.get(segment);
    if (child === undefined) {
      child = newNode();
      node.children.set(segment, child);
    }
    node = child;
  }
  node.routes.push(route);
}

function walk(root: TrieNode, method: string, path: string): CompiledRoute | undefined {
  let best = firstForMethod(root, method);
  let node: TrieNode | undefined = root;
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

function firstForMethod(node: TrieNode, method: string): CompiledRoute | undefined {
  for (const route of node.routes) {
    if (route.config.methods === undefined || (route.config.methods as readonly string[]).includes(method)) {
      return route;
    }
  }
  return undefined;
}
