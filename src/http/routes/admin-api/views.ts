import type { HistoryItem } from '../../../admin/usage-history.js';
import type { PolicyState } from '../../../core/decision.js';
import type { StoredApiKey } from '../../../db/api-keys.js';
import type { AuditEntry } from '../../../db/audit-log.js';
import type { CreditGrant } from '../../../db/credit-grants.js';
import type { Subject } from '../../../db/subjects.js';

/** JSON shapes of the admin API (snake_case, RFC 3339 instants). A key view never holds the hash. */

const iso = (date: Date | null): string | null => date?.toISOString() ?? null;

export function subjectView(subject: Subject) {
  return {
    id: subject.id,
    plan: subject.plan,
    overrides: subject.overrides,
    metadata: subject.metadata,
    suspended_at: iso(subject.suspendedAt),
    created_at: iso(subject.createdAt),
    updated_at: iso(subject.updatedAt),
  };
}

export function keyView(key: StoredApiKey) {
  return {
    id: key.id,
    subject: key.subjectId,
    prefix: key.displayPrefix,
    name: key.name,
    scopes: key.scopes,
    created_at: iso(key.createdAt),
    expires_at: iso(key.expiresAt),
    revoked_at: iso(key.revokedAt),
    last_used_at: iso(key.lastUsedAt),
    replaces_key_id: key.replacesKeyId,
  };
}

export function creditView(grant: CreditGrant) {
  return {
    id: grant.id,
    subject: grant.subjectId,
    metric: grant.metric,
    amount: grant.amount,
    granted_at: iso(grant.grantedAt),
    expires_at: iso(grant.expiresAt),
    reason: grant.reason,
  };
}

export function auditView(entry: AuditEntry) {
  return {
    id: entry.id,
    at: iso(entry.at),
    actor: entry.actor,
    action: entry.action,
    target: entry.target,
    subject: entry.subjectId,
    details: entry.details,
  };
}

/**
 * One window or quota as a caller sees it: used / limit / remaining / reset
 * (and percent used). `used` counts every unit of the period, overage
 * included and a settled cost past the limit too (so `percent` may pass 100); a quota allowing overage adds `included` (units within the
 * limit) and `overage` (past it) apart, for billing. A lifetime quota never
 * resets: `reset_seconds` 0 and `reset_at` null.
 */
export function policyUsageView(state: PolicyState, nowMs: number) {
  const included = Math.max(0, state.limit - state.remaining);
  // A read of the counters knows the true count (a cost settled past the limit counts whole).
  const used = state.used ?? included + (state.overage ?? 0);
  return {
    name: state.name,
    kind: state.kind,
    window: state.window,
    limit: state.limit,
    used,
    remaining: state.remaining,
    reset_seconds: state.resetSeconds,
    reset_at: state.resetSeconds === 0 ? null : new Date(Math.floor(nowMs / 1000) * 1000 + state.resetSeconds * 1000).toISOString(),
    percent: Math.round((used / state.limit) * 10_000) / 100,
    ...(state.overage === undefined ? {} : { included, overage: state.overage }),
  };
}

/** One history item as the API shows it. */
export function historyView(item: HistoryItem) {
  return {
    period_start: new Date(item.periodStartMs).toISOString(),
    period_end: new Date(item.periodEndMs).toISOString(),
    name: item.name,
    used: item.used,
    included: item.included,
    overage: item.overage,
    credits: item.credits,
  };
}
