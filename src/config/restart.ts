import type { GatewayConfig } from './schema.js';

/**
 * What a hot reload may change. Routes, plans, upstreams, auth, proxy,
 * headers, shutdown and logging are rebuilt from the new file; the sections
 * below configure what outlives a reload (the listeners' sockets, the limit
 * store, the databases, the ledger flusher, the admin token), so a change to
 * one of them is refused and needs a restart.
 */
export const RESTART_SECTIONS = ['listeners', 'store', 'postgres', 'usage', 'admin'] as const;

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

/** The {@link RESTART_SECTIONS} that differ between `running` and `next` (both validated, defaults filled in). */
export function sectionsNeedingRestart(running: GatewayConfig, next: GatewayConfig): string[] {
  return RESTART_SECTIONS.filter((section) => JSON.stringify(running[section]) !== JSON.stringify(next[section]));
}
