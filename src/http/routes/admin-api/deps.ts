import type { Logger } from 'pino';
import type { CacheInvalidator } from '../../../auth/cache-invalidation.js';
import type { ReloadResult } from '../../../config/restart.js';
import type { GatewayConfig } from '../../../config/schema.js';
import type { Clock } from '../../../core/clock.js';
import type { Database } from '../../../db/database.js';
import type { UsageStore } from '../../usage-store.js';
import type { AdminContext } from './operations.js';

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
  readonly logger: Logger;
  /** Re-reads gateway.yaml (`POST /admin/reload`); absent: no such route. Needs only the token, not a database. */
  readonly reload?: (() => Promise<ReloadResult>) | undefined;
}

/** AdminApiDeps once the API is on: a database is open. */
export interface AdminRouteDeps extends AdminApiDeps {
  readonly db: Database;
  readonly ctx: AdminContext;
  /** Runs an invalidation after a committed write; a failure is logged, not answered (the write stands). */
  readonly invalidate: (work: (invalidator: CacheInvalidator) => Promise<void>) => Promise<void>;
}
