import type { GatewayConfig } from './schema.js';

/**
 * What a hot reload may change. Routes, plans (their thresholds too), upstreams, auth, proxy
 * (but its listener limits), headers, shutdown and the access log are rebuilt from the new file; the
 * fields below configure what outlives a reload (the listeners' sockets, the
 * limit store, the databases, the ledger flusher, the admin token, the
 * logger), so a change to one of them is refused and needs a restart.
 */
const RESTART_FIELDS = [
  'listeners',
  'store',
  'postgres',
  'usage',
  // The event stream's cap is set on the limiter (and the memory outbox) at start.
  'events.stream_max_length',
  'admin',
  // The webhook deliverer, its secrets and its clients are built once at start.
  'events.webhooks',
  'events.delivery',
  'logging.level',
  // Set on the listening server at start (http/listener-limits.ts).
  'proxy.max_connections',
  'proxy.headers_timeout_ms',
  'proxy.keep_alive_timeout_ms',
  'proxy.request_timeout_ms',
] as const;

/** How a reload ended. A refusal is a value: the old config keeps serving. */
export type ReloadResult =
  | { readonly ok: true; readonly routes: number; readonly plans: number; readonly upstreams: number }
  | {
      readonly ok: false;
      /** `invalid`: the file fails check-config; `needs_restart`: it changes a section that cannot be applied live. */
      readonly reason: 'invalid' | 'needs_restart';
      /** One line per problem; for `invalid`, exactly the lines check-config prints. */
      readonly problems: readonly string[];
    };

/** The {@link RESTART_FIELDS} that differ between `running` and `next` (both validated, defaults filled in). */
export function sectionsNeedingRestart(running: GatewayConfig, next: GatewayConfig): string[] {
  return RESTART_FIELDS.filter((field) => JSON.stringify(valueAt(running, field)) !== JSON.stringify(valueAt(next, field)));
}

function valueAt(config: GatewayConfig, dottedPath: string): unknown {
  let value: unknown = config;
  for (const key of dottedPath.split('.')) value = (value as Record<string, unknown> | undefined)?.[key];
  return value;
}
