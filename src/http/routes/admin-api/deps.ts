import type { Logger } from 'pino';
import type { CacheInvalidator } from '../../../auth/cache-invalidation.js';
import type { ReloadResult } from '../../../config/restart.js';
import type { GatewayConfig } from '../../../config/schema.js';
import type { Clock } from '../../../core/clock.js';
import type { SubjectBlockStore } from '../../../core/subject-blocks.js';
import type { UsageStore } from '../../../core/usage-store.js';
import type { Database } from '../../../db/database.js';
import type { AdminContext } from '../../../admin/admin-context.js';

/** What the admin API is built from; main.ts provides each. */
export interface AdminApiDeps {
  /** The bearer token; undefined or empty turns the API off (404 `admin_disabled`). */
  readonly token: string | undefined;
  /** The primary database; undefined when none is open (the API then answers 404 `admin_disabled`). */
  readonly db: Database | undefined;
  readonly config: GatewayConfig;
  readonly clock: Clock;
  readonly invalidator: CacheInvalidator;
  /** The limit store's read and reset; absent: usage and reset answer 503 `usage_unavailable`. */
  readonly usage?: UsageStore | undefined;
  /** Blocks by abuse rules, for `DELETE /admin/subjects/{id}/block`; absent: it answers 503 `usage_unavailable`. */
  readonly blocks?: SubjectBlockStore | undefined;
  readonly logger: Logger;
  /** Re-reads gateway.yaml (`POST /admin/reload`); absent: no such route. Needs only the token, not a database. */
  readonly reload?: (() => Promise<ReloadResult>) | undefined;
}

/** What the routes get once the API is on (a token and a database): the config, and the admin service's context. */
export interface AdminRouteDeps {
  readonly config: GatewayConfig;
  readonly clock: Clock;
  /** The service's context: this database, the actor of this token, cache invalidation that logs its failures. */
  readonly ctx: AdminContext;
}
