import { periodOf } from '../core/calendar.js';
import { keyCountingId } from '../core/counting-id.js';
import type { CalendarWindowName } from '../core/windows.js';
import { readUsageHistory } from '../db/usage.js';
import type { AdminContext } from './admin-context.js';
import { validationError } from './admin-context.js';
import { requireSubject } from './subjects.js';

/**
 * A subject's usage history from the ledger: per period of one granularity,
 * its traffic (`requests`: the `w:<window>` counter, in cost units) and each
 * metered metric, with included, overage and credit units apart, for
 * billing and dashboards. At most one flush interval behind the store.
 */

/** One metric (or `requests`) in one period. */
export interface HistoryItem {
  readonly periodStartMs: number;
  readonly periodEndMs: number;
  /** `requests` for all traffic, else the metric (`search`). */
  readonly name: string;
  /** Every unit charged in the period. */
  readonly used: number;
  /** Units within the quota's limit (used − overage). */
  readonly included: number;
  /** Units past the limit of a quota allowing overage. */
  readonly overage: number;
  /** Units paid from prepaid credits (`c:<metric>:<window>` rows). */
  readonly credits: number;
}

export interface HistoryQuery {
  readonly granularity: CalendarWindowName;
  readonly fromMs?: number | undefined;
  readonly toMs?: number | undefined;
  /** Periods per page. */
  readonly limit: number;
  readonly cursor?: string | undefined;
}

/** How far back a history reaches by default, per granularity: two days of hours, 31 days, 12 months. */
const DEFAULT_SPAN_MS: Readonly<Record<CalendarWindowName, number>> = {
  second: 3_600_000,
  minute: 86_400_000,
  hour: 2 * 86_400_000,
  day: 31 * 86_400_000,
  month: 366 * 86_400_000,
};

/** The cursor of the page after the one ending with the period starting at `startMs`. */
function cursorOf(startMs: number): string {
  return Buffer.from(`h:${startMs}`).toString('base64url');
}

/** The period start a cursor names; 400 at `cursor` for one this service did not hand out. */
function afterCursor(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const startMs = Number(text.slice(2));
  if (!text.startsWith('h:') || !Number.isSafeInteger(startMs)) throw validationError('cursor', 'not a cursor this API handed out');
  return startMs;
}

/** Splits a ledger counter id into its kind (`w`, `q`, `o`, `c`) and metric; undefined for others. */
function counterParts(counterId: string): { kind: string; metric: string } | undefined {
  const parts = counterId.split(':');
  if (parts[0] === 'w' && parts.length === 2) return { kind: 'w', metric: 'requests' };
  if ((parts[0] === 'q' || parts[0] === 'o' || parts[0] === 'c') && parts.length === 3) return { kind: parts[0], metric: parts[1]! };
  return undefined;
}

/** `requests` sorts before every metric of its period. */
function rankOf(name: string): number {
  return name === 'requests' ? 0 : 1;
}

/**
 * One page of a known subject's history, oldest period first; with
 * `keyId`, of that key's own counters (a plan with `limit_by: key`; a key
 * the subject never held has none). 404 `subject_not_found`.
 */
export async function usageHistory(
  ctx: Pick<AdminContext, 'db' | 'clock'>,
  subjectId: string,
  keyId: string | undefined,
  query: HistoryQuery,
): Promise<HistoryPage> {
  await requireSubject(ctx, subjectId);
  return ledgerHistory(ctx, keyId === undefined ? subjectId : keyCountingId(subjectId, keyId), query);
}

/** One page of history. */
export interface HistoryPage {
  readonly items: HistoryItem[];
  readonly nextCursor: string | undefined;
}

/**
 * One page of the ledger's history of `subjectId`, whether or not the
 * database knows the subject (a key from gateway.yaml, an `ip:` subject):
 * what the caller's own `GET /_quotagate/usage/history` reads.
 */
export async function ledgerHistory(ctx: Pick<AdminContext, 'db' | 'clock'>, subjectId: string, query: HistoryQuery): Promise<HistoryPage> {
  const nowMs = ctx.clock.now();
  const toMs = query.toMs ?? nowMs;
  let fromMs = query.fromMs ?? toMs - DEFAULT_SPAN_MS[query.granularity];
  if (query.cursor !== undefined) fromMs = Math.max(fromMs, afterCursor(query.cursor) + 1);
  if (fromMs > toMs) throw validationError('from', 'must not be after to');
  const page = await readUsageHistory(ctx.db, subjectId, query.granularity, { from: new Date(fromMs), to: new Date(toMs) }, query.limit);
  const byKey = new Map<string, { periodStartMs: number; name: string; used: number; overage: number; credits: number }>();
  for (const row of page.rows) {
    const parts = counterParts(row.counterId);
    if (parts === undefined) continue;
    const periodStartMs = row.periodStart.getTime();
    const key = `${periodStartMs}:${parts.metric}`;
    let item = byKey.get(key);
    if (item === undefined) byKey.set(key, (item = { periodStartMs, name: parts.metric, used: 0, overage: 0, credits: 0 }));
    if (parts.kind === 'o') item.overage = row.count;
    else if (parts.kind === 'c') item.credits = row.count;
    else item.used = row.count;
  }
  const items = [...byKey.values()].map((item) => ({
    ...item,
    periodEndMs: periodOf(query.granularity, item.periodStartMs).endMs,
    included: Math.max(0, item.used - item.overage),
  }));
  // Oldest period first; in a period `requests`, then the metrics by name.
  items.sort((a, b) => a.periodStartMs - b.periodStartMs || rankOf(a.name) - rankOf(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { items, nextCursor: page.lastPeriodStart === undefined ? undefined : cursorOf(page.lastPeriodStart.getTime()) };
}

/** `items` as CSV (RFC 4180, header line first): what `Accept: text/csv` gets. */
export function historyCsv(subjectId: string, items: readonly HistoryItem[]): string {
  const quote = (value: string) => (/[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);
  const lines = ['subject,period_start,period_end,name,used,included,overage,credits'];
  for (const item of items) {
    lines.push(
      [
        quote(subjectId),
        new Date(item.periodStartMs).toISOString(),
        new Date(item.periodEndMs).toISOString(),
        quote(item.name),
        item.used,
        item.included,
        item.overage,
        item.credits,
      ].join(','),
    );
  }
  return `${lines.join('\r\n')}\r\n`;
}
