import type { GatewayConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { GatewayError } from '../core/errors.js';
import type { SubjectBlockStore } from '../core/subject-blocks.js';
import type { UsageStore } from '../core/usage-store.js';
import type { Database, JsonObject, Transaction } from '../db/database.js';
import { appendAudit } from '../db/audit-log.js';

/**
 * The admin service: the operations of the admin API and of the CLI's
 * database commands, called by both (handlers only parse, call and render).
 * Every write runs in one transaction together with its audit row — a write
 * that fails leaves no row, and no change is without one — and, once
 * committed, tells the gateways' key caches when what a lookup returns
 * changed. Failures the caller caused are GatewayErrors with stable codes;
 * the plain key of a created or rotated key is returned once and is never
 * written anywhere (the database holds its SHA-256 only).
 */

/** Who acts, and what the operations act on. */
export interface AdminContext {
  readonly db: Database;
  readonly plans: GatewayConfig['plans'];
  /** The configured API key prefix (`auth.api_keys.prefix`). */
  readonly keyPrefix: string;
  readonly clock: Clock;
  /** The audit actor: `admin:<token hash prefix>`, `cli:<user>`. Never a secret. */
  readonly actor: string;
  /**
   * Tells every gateway that a subject's keys, plan, overrides, suspension or
   * counters changed, after the write committed. Never rejects: a delivery
   * failure is reported by the implementation and the write stands (caches
   * then expire within `auth.api_keys.cache.ttl_ms`).
   */
  readonly subjectChanged: (subjectId: string) => Promise<void>;
  /** The limit store's read and reset; absent (the CLI): usage and reset answer 503 `usage_unavailable`. */
  readonly usage?: UsageStore | undefined;
  /** Blocks by abuse rules (`DELETE /admin/subjects/{id}/block`); absent (the CLI): 503 `usage_unavailable`. */
  readonly blocks?: SubjectBlockStore | undefined;
}

/** 400 `validation_failed` at `path` (the shape the admin API's body validation gives). */
export function validationError(path: string, message: string): GatewayError {
  return new GatewayError('validation_failed', `${path}: ${message}`, { errors: [{ path, message }] });
}

/** 404 `subject_not_found`. */
export function subjectNotFound(id: string): GatewayError {
  return new GatewayError('subject_not_found', `There is no subject "${id}".`);
}

/** 404 `key_not_found`. */
export function keyNotFound(id: string): GatewayError {
  return new GatewayError('key_not_found', `There is no API key "${id}".`);
}

/** The audit target of a subject. */
export function subjectTarget(id: string): string {
  return `subject:${id}`;
}

/** The audit target of an API key. */
export function keyTarget(id: string): string {
  return `key:${id}`;
}

/** What an audited write did: its result, and the audit row's target, subject and details. */
export interface AuditedChange<T> {
  readonly result: T;
  readonly target: string;
  readonly subjectId: string | null;
  readonly details?: JsonObject;
}

/** Runs `work` and appends its audit row `action`, in one transaction; resolves to the work's result. */
export async function audited<T>(ctx: AdminContext, action: string, work: (tx: Transaction) => Promise<AuditedChange<T>>): Promise<T> {
  return ctx.db.transaction(async (tx) => {
    const { result, target, subjectId, details } = await work(tx);
    await appendAudit(tx, { at: new Date(ctx.clock.now()), actor: ctx.actor, action, target, subjectId, details: details ?? {} });
    return result;
  });
}
