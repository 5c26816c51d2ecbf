import type { Queryable, Transaction } from './database.js';

/**
 * Prepaid credits: grants of units of one metered metric to a subject,
 * consumed by the limit store once the metric's quota is exhausted (a later
 * issue). Grants are only added; a balance is their sum.
 */

export interface CreditGrant {
  readonly id: number;
  readonly subjectId: string;
  /** A quota metric of gateway.yaml (`search`). */
  readonly metric: string;
  /** Units granted; a positive integer. */
  readonly amount: number;
  readonly grantedAt: Date;
  /** No longer counted at and after this instant; null: never expires. */
  readonly expiresAt: Date | null;
  readonly reason: string | null;
}

export type NewCreditGrant = Omit<CreditGrant, 'id' | 'expiresAt' | 'reason'> & {
  readonly expiresAt?: Date | null;
  readonly reason?: string | null;
};

interface CreditGrantRow {
  id: number;
  subject_id: string;
  metric: string;
  amount: number;
  granted_at: Date;
  expires_at: Date | null;
  reason: string | null;
}

const COLUMNS = 'id, subject_id, metric, amount, granted_at, expires_at, reason';
const INSERT = `
INSERT INTO credit_grants (subject_id, metric, amount, granted_at, expires_at, reason)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING ${COLUMNS}`;
const SELECT_BY_SUBJECT = `SELECT ${COLUMNS} FROM credit_grants WHERE subject_id = $1 ORDER BY granted_at, id`;
// sum(bigint) is numeric, which the engines return differently: cast back.
const SUM = `
SELECT COALESCE(sum(amount), 0)::bigint AS total FROM credit_grants
WHERE subject_id = $1 AND metric = $2 AND granted_at <= $3 AND (expires_at IS NULL OR expires_at > $3)`;

export async function insertCreditGrant(tx: Transaction, grant: NewCreditGrant): Promise<CreditGrant> {
  if (!Number.isSafeInteger(grant.amount) || grant.amount <= 0) {
    throw new RangeError(`a credit grant must be a positive integer, got ${grant.amount}`);
  }
  const rows = await tx.query<CreditGrantRow>(INSERT, [
    grant.subjectId,
    grant.metric,
    grant.amount,
    grant.grantedAt,
    grant.expiresAt ?? null,
    grant.reason ?? null,
  ]);
  return toCreditGrant(rows[0]!);
}

/** Every grant of the subject, oldest first. */
export async function listCreditGrants(q: Queryable, subjectId: string): Promise<CreditGrant[]> {
  return (await q.query<CreditGrantRow>(SELECT_BY_SUBJECT, [subjectId])).map(toCreditGrant);
}

/** Units of `metric` granted to the subject and in force at `at` (granted by then, not yet expired). */
export async function sumCredits(q: Queryable, subjectId: string, metric: string, at: Date): Promise<number> {
  const rows = await q.query<{ total: number }>(SUM, [subjectId, metric, at]);
  return rows[0]?.total ?? 0;
}

function toCreditGrant(row: CreditGrantRow): CreditGrant {
  return {
    id: row.id,
    subjectId: row.subject_id,
    metric: row.metric,
    amount: row.amount,
    grantedAt: row.granted_at,
    expiresAt: row.expires_at,
    reason: row.reason,
  };
}
