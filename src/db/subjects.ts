import { type JsonObject, type Page, pageLimit, type Queryable, type Transaction } from './database.js';

/**
 * Subjects: the callers limits are counted against, with their plan and
 * optional limit overrides. Writes take a Transaction so the caller writes
 * its audit row in the same one. Validating a plan name or the shape of
 * overrides against gateway.yaml is the caller's job.
 */

export interface Subject {
  readonly id: string;
  /** A plan name from gateway.yaml. */
  readonly plan: string;
  /** Limits that replace the plan's for this subject; null when none. */
  readonly overrides: JsonObject | null;
  readonly metadata: JsonObject;
  /** When the subject was suspended; null while active. */
  readonly suspendedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface NewSubject {
  readonly id: string;
  readonly plan: string;
  readonly overrides?: JsonObject | null;
  readonly metadata?: JsonObject;
}

export interface ListSubjectsOptions {
  /** `nextCursor` of the previous page; the first page without it. */
  readonly cursor?: string;
  /** Subjects per page, 1–1000. */
  readonly limit: number;
}

interface SubjectRow {
  id: string;
  plan: string;
  overrides: JsonObject | null;
  metadata: JsonObject;
  suspended_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'id, plan, overrides, metadata, suspended_at, created_at, updated_at';

const INSERT = `
INSERT INTO subjects (id, plan, overrides, metadata) VALUES ($1, $2, $3::jsonb, $4::jsonb)
ON CONFLICT (id) DO NOTHING
RETURNING ${COLUMNS}`;
const SELECT_ONE = `SELECT ${COLUMNS} FROM subjects WHERE id = $1`;
const SELECT_FOR_UPDATE = `SELECT ${COLUMNS} FROM subjects WHERE id = $1 FOR UPDATE`;
const SELECT_PAGE = `SELECT ${COLUMNS} FROM subjects WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT $2`;
const UPDATE_PLAN = `UPDATE subjects SET plan = $2, updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`;
const UPDATE_OVERRIDES = `UPDATE subjects SET overrides = $2::jsonb, updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`;
// A second suspend keeps the first instant; reactivating an active subject changes nothing.
const SUSPEND = `
UPDATE subjects SET suspended_at = COALESCE(suspended_at, now()), updated_at = now()
WHERE id = $1 RETURNING ${COLUMNS}`;
const REACTIVATE = `UPDATE subjects SET suspended_at = NULL, updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`;
const DELETE = 'DELETE FROM subjects WHERE id = $1 RETURNING id';

/** Creates the subject; undefined when a subject with this id exists (nothing is changed). */
export async function createSubject(tx: Transaction, subject: NewSubject): Promise<Subject | undefined> {
  return one(await tx.query<SubjectRow>(INSERT, [subject.id, subject.plan, subject.overrides ?? null, subject.metadata ?? {}]));
}

export async function getSubject(q: Queryable, id: string): Promise<Subject | undefined> {
  return one(await q.query<SubjectRow>(SELECT_ONE, [id]));
}

/**
 * The subject, locked until the transaction ends: writes that check a rule
 * across the subject's rows (a plan's `max_keys`) take it first, so two of
 * them cannot both pass the check.
 */
export async function lockSubject(tx: Transaction, id: string): Promise<Subject | undefined> {
  return one(await tx.query<SubjectRow>(SELECT_FOR_UPDATE, [id]));
}

/** Subjects ordered by id, one page at a time; the cursor is the last id of the previous page. */
export async function listSubjects(q: Queryable, options: ListSubjectsOptions): Promise<Page<Subject>> {
  const limit = pageLimit(options.limit);
  const rows = await q.query<SubjectRow>(SELECT_PAGE, [options.cursor ?? null, limit + 1]);
  const items = rows.slice(0, limit).map(toSubject);
  return { items, nextCursor: rows.length > limit ? items.at(-1)!.id : undefined };
}

/** The updated subject; undefined when there is none with this id. */
export async function setSubjectPlan(tx: Transaction, id: string, plan: string): Promise<Subject | undefined> {
  return one(await tx.query<SubjectRow>(UPDATE_PLAN, [id, plan]));
}

/** Replaces the overrides (null removes them); undefined when there is no such subject. */
export async function setSubjectOverrides(tx: Transaction, id: string, overrides: JsonObject | null): Promise<Subject | undefined> {
  return one(await tx.query<SubjectRow>(UPDATE_OVERRIDES, [id, overrides]));
}

/** Suspends the subject (its keys are refused); suspending it again keeps the first instant. */
export async function suspendSubject(tx: Transaction, id: string): Promise<Subject | undefined> {
  return one(await tx.query<SubjectRow>(SUSPEND, [id]));
}

export async function reactivateSubject(tx: Transaction, id: string): Promise<Subject | undefined> {
  return one(await tx.query<SubjectRow>(REACTIVATE, [id]));
}

/**
 * Deletes the subject and its API keys; false when there was none. Its usage
 * rows, credit grants and audit rows stay: they are history, and billing
 * needs them.
 */
export async function deleteSubject(tx: Transaction, id: string): Promise<boolean> {
  return (await tx.query(DELETE, [id])).length === 1;
}

function one(rows: readonly SubjectRow[]): Subject | undefined {
  return rows[0] === undefined ? undefined : toSubject(rows[0]);
}

function toSubject(row: SubjectRow): Subject {
  return {
    id: row.id,
    plan: row.plan,
    overrides: row.overrides,
    metadata: row.metadata,
    suspendedAt: row.suspended_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
