import type { GatewayConfig } from '../../config/schema.js';
import { isOwnPath } from './own-path.js';
import type { Exchange } from '../exchange.js';
import { writeJson } from '../node-response.js';

/** The path of the public plan catalogue on the proxy listener, answered before the route table. */
const PLAN_CATALOGUE_PATH = '/_quotagate/plans';

/** Whether the request is `GET` (or `HEAD`) of {@link PLAN_CATALOGUE_PATH}, with or without a query. */
export function isPlanCatalogueRequest(method: string | undefined, rawUrl: string | undefined): boolean {
  return (method === 'GET' || method === 'HEAD') && isOwnPath(rawUrl, PLAN_CATALOGUE_PATH);
}

/** One plan as the catalogue shows it: what a caller may compare, nothing about subjects or keys. */
interface CataloguePlan {
  readonly name: string;
  readonly display_name: string;
  readonly limits: Readonly<Record<string, number>>;
  readonly quotas: Readonly<Record<string, Readonly<Record<string, number | { readonly max: number }>>>>;
  readonly quota_status: number;
  readonly upgrade_url: string | null;
}

/** Drops the absent windows of a parsed limits object. */
function definedEntries<T>(record: Readonly<Record<string, T | undefined>>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).filter((entry): entry is [string, T] => entry[1] !== undefined));
}

/**
 * The catalogue of `plans`: every plan not marked `public: false`, in
 * gateway.yaml's order, built once per config (load and reload), so a
 * request serializes nothing new.
 */
export function planCatalogueOf(plans: GatewayConfig['plans']): { readonly plans: readonly CataloguePlan[] } {
  const listed: CataloguePlan[] = [];
  for (const [name, plan] of Object.entries(plans)) {
    if (!plan.public) continue;
    const quotas: Record<string, Record<string, number | { max: number }>> = {};
    for (const [metric, quota] of Object.entries(plan.quotas)) {
      const { overage, ...windows } = quota;
      quotas[metric] = { ...definedEntries(windows), ...(overage === undefined ? {} : { overage }) };
    }
    listed.push({
      name,
      display_name: plan.display_name ?? name,
      limits: definedEntries(plan.limits),
      quotas,
      quota_status: plan.quota_status,
      upgrade_url: plan.upgrade_url ?? null,
    });
  }
  return { plans: listed };
}

/**
 * `GET /_quotagate/plans`: the public plan catalogue (names, display names,
 * limits, quotas, upgrade URLs), for pricing pages and SDKs. No credential
 * needed, charges nothing; cacheable for a minute.
 */
export function planCatalogue(plans: GatewayConfig['plans']): (exchange: Exchange) => void {
  const catalogue = planCatalogueOf(plans);
  return function planCatalogueStep(exchange) {
    writeJson(exchange.res, 200, catalogue, [
      ['cache-control', 'public, max-age=60'],
      ['x-request-id', exchange.requestId],
    ]);
  };
}
