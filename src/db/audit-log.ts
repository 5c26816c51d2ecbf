import { type JsonObject, type Page, pageLimit, type Queryable, type Transaction } from './database.js';

/**
 * The audit log: one row per change, appended in the transaction of the
 * change itself (so there is no change without its row, nor a row without
 * its change), listed newest first.
 */

export interface AuditEntry {
  readonly id: number;
  readonly at: Date;
  /** Who made the change: `admin-api`, `cli:<user>`. */
  readonly actor: string;
  /** What was done: `subject.create`, `key.revoke`. */
  readonly action: string;
  /** What it was done to: `subject:acme`, `key:k_…`. */
  readonly target: string;
  /** The subject the target belongs to, when there is one. */
  readonly subjectId: string | null;
  /** Whatever else the change needs to be understood; never a plain key. */
  readonly details: JsonObject;
}

export type NewAuditEntry = Omit<AuditEntry, 'id' | 'subjectId' | 'details'> & {
  readonly subjectId?: string | null;
  readonly details?: JsonObject;
};

export interface ListAuditOptions {
  readonly target?: string;
  readonly subjectId?: string;
  /** Entries at or after this instant. */
  readonly from?: Date;
  /** Entries before this instant. */
  readonly to?: Date;
  /** `nextCursor` of the previous page. */
  readonly cursor?: string;
  /** Entries per page, 1–1000. */
  readonly limit: number;
}

/** A cursor that listAudit did not hand out. */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
}

interface AuditRow {
  id: number;
  at: Date;
  actor: string;
  action: string;
  target: string;
  subject_id: string | null;
  details: JsonObject;
}

const COLUMNS = 'id, at, actor, action, target, subject_id, details';
const INSERT = `
INSERT INTO audit_log (at, actor, action, target, subject_id, details) VALUES ($1, $2, $3, $4, $5, $6::jsonb)
RETURNING ${COLUMNS}`;
// Each filter applies when its parameter is not null. Newest first; the
// cursor ($5, $6) is the (at, id) of the previous page's last entry.
const SELECT_PAGE = `
SELECT ${COLUMNS} FROM audit_log
WHERE ($1::text IS NULL OR target = $1)
  AND ($2::text IS NULL OR subject_id = $2)
  AND ($3::timestamptz IS NULL OR at >= $3)
  AND ($4::timestamptz IS NULL OR at < $4)
  AND ($5::timestamptz IS NULL OR (at, id) < ($5, $6::bigint))
ORDER BY at DESC, id DESC
LIMIT $7`;

/**
 * Appends one entry, in the caller's transaction. `at` comes from the
 * caller's clock, at millisecond precision like every Date.
 */
export async function appendAudit(tx: Transaction, entry: NewAuditEntry): Promise<AuditEntry> {
  const rows = await tx.query<AuditRow>(INSERT, [
    entry.at,
    entry.actor,
    entry.action,
    entry.target,
    entry.subjectId ?? null,
    entry.details ?? {},
  ]);
  return toAuditEntry(rows[0]!);
}

/**
 * Entries matching every given filter, newest first, one page at a time.
 * Rejects with InvalidCursorError for a cursor it did not hand out.
 */
export async function listAudit(q: Queryable, options: ListAuditOptions): Promise<Page<AuditEntry>> {
  const limit = pageLimit(options.limit);
  const after = options.cursor === undefined ? undefined : parseCursor(options.cursor);
  const rows = await q.query<AuditRow>(SELECT_PAGE, [
    options.target ?? null,
    options.subjectId ?? null,
    options.from ?? null,
    options.to ?? null,
    after?.at ?? null,
    after?.id ?? null,
    limit + 1,
  ]);
  const items = rows.slice(0, limit).map(toAuditEntry);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last !== undefined ? `${last.at.getTime()}.${last.id}` : undefined };
}

const CURSOR_PATTERN = /^(\d{1,15})\.(\d{1,15})$/;

/** Whether `cursor` has the form of one listAudit hands out (validated before the query, with the other parameters). */
export function isAuditCursor(cursor: string): boolean {
  return CURSOR_PATTERN.test(cursor);
}

function parseCursor(cursor: string): { at: Date; id: number } {
  const match = CURSOR_PATTERN.exec(cursor);
  if (match === null) throw new InvalidCursorError(`invalid audit cursor "${cursor.slice(0, 40)}"`);
  return { at: new Date(Number(match[1])), id: Number(match[2]) };
}

function toAuditEntry(row: AuditRow): AuditEntry {
  return {
    id: row.id,
    at: row.at,
    actor: row.actor,
    action: row.action,
    target: row.target,
    subjectId: row.subject_id,
    details: row.details,
  };
}
