/**
 * Redis's `maxmemory-policy`, as `INFO memory` reports it (`maxmemory_policy:`),
 * and whether it can evict the gateway's keys. INFO is read rather than
 * CONFIG GET because managed Redis services and least-privilege ACL users
 * commonly refuse CONFIG.
 */
const MAXMEMORY_POLICIES = [
  'noeviction',
  'allkeys-lru',
  'allkeys-lfu',
  'allkeys-random',
  'volatile-lru',
  'volatile-lfu',
  'volatile-random',
  'volatile-ttl',
] as const;

/** A policy Redis reports, or `unknown` (INFO refused, the node unreachable, a policy this list lacks). */
export type MaxmemoryPolicy = (typeof MAXMEMORY_POLICIES)[number] | 'unknown';

/** The `maxmemory_policy` field of an `INFO memory` reply. */
export function maxmemoryPolicyOf(info: string): MaxmemoryPolicy {
  const value = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
  return (MAXMEMORY_POLICIES as readonly string[]).includes(value ?? '') ? (value as MaxmemoryPolicy) : 'unknown';
}

/**
 * Why `policy` puts the limits at risk, or undefined when it does not. Every
 * counter carries a TTL (its period's end plus a grace), so the `volatile-*`
 * policies may evict counters as much as the `allkeys-*` ones; an evicted
 * counter restarts at zero, handing its subject a fresh window or quota.
 */
export function evictionRisk(policy: MaxmemoryPolicy): string | undefined {
  if (policy === 'noeviction' || policy === 'unknown') return undefined;
  const which = policy.startsWith('allkeys-') ? 'any key' : 'keys with a TTL, which every counter has';
  return `maxmemory-policy ${policy} lets Redis evict ${which} at maxmemory: an evicted counter restarts at zero and its subject gets a fresh window or quota; use noeviction`;
}
