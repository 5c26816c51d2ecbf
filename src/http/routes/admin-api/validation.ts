import type { Context } from 'hono';
import { z } from 'zod';
import { formatPath, plainIssueMessage } from '../../../config/format-issues.js';
import { looksLikeKeyCountingId } from '../../../core/counting-id.js';
import { GatewayError } from '../../../core/errors.js';
import { CALENDAR_WINDOW_NAMES, WINDOW_NAMES } from '../../../core/windows.js';
import type { GatewayConfig } from '../../../config/schema.js';
import { isAuditCursor } from '../../../db/audit-log.js';
import { EVENT_STATUSES, isEventCursor } from '../../../db/quota-events.js';
import { QUOTA_EVENT_TYPES } from '../../../core/quota-events.js';
import { unknownPlanProblem, unmeteredMetricProblem } from '../../../admin/plan-checks.js';

/** One problem with a request, at a path into its body or query (`scopes[1]`, `limits.hour`). */
export interface FieldError {
  readonly path: string;
  readonly message: string;
}

/** 400 `validation_failed` listing every problem with its field path. */
function validationFailed(errors: readonly FieldError[]): GatewayError {
  const detail = errors.map((error) => `${error.path}: ${error.message}`).join('; ');
  return new GatewayError('validation_failed', detail, { errors });
}

/** One error per field (the first zod found), unknown fields each by their own path. */
function fieldErrors(issues: readonly z.core.$ZodIssue[]): FieldError[] {
  const all = issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: 'unknown field' }))
      : [{ path: formatPath(issue.path), message: issue.message }],
  );
  const seen = new Set<string>();
  return all.filter((error) => !seen.has(error.path) && seen.add(error.path));
}

/** `value` parsed by `schema`, or a validation_failed error naming every bad field. */
function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value, { error: plainIssueMessage });
  if (!result.success) throw validationFailed(fieldErrors(result.error.issues));
  return result.data;
}

/** Deepest nesting of arrays and objects an admin request body may have (metadata included). */
const MAX_JSON_DEPTH = 32;

/**
 * The JSON body parsed by `schema`. A body that is not JSON, or nests
 * deeper than {@link MAX_JSON_DEPTH}, is a validation error at `(root)`:
 * nothing deeper reaches the schema, the database or a serializer.
 */
export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  let body: unknown;
  try {
    const text = await c.req.text();
    body = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    throw validationFailed([{ path: '(root)', message: 'expected a JSON body' }]);
  }
  if (nestsDeeperThan(body, MAX_JSON_DEPTH)) {
    throw validationFailed([{ path: '(root)', message: `expected at most ${MAX_JSON_DEPTH} levels of nested arrays and objects` }]);
  }
  return parseWith(schema, body);
}

/** Whether `value` has arrays or objects nested more than `maxDepth` deep (iterative: no stack to overflow). */
function nestsDeeperThan(value: unknown, maxDepth: number): boolean {
  const pending: Array<readonly [unknown, number]> = [[value, 1]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, depth] = next;
    if (typeof item !== 'object' || item === null) continue;
    if (depth > maxDepth) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      if (typeof child === 'object' && child !== null) pending.push([child, depth + 1]);
    }
  }
  return false;
}

/** The query string parsed by `schema` (each parameter once, as a string). */
export function queryOf<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  return parseWith(schema, c.req.query());
}

const MAX_LIMIT = 1_000_000_000_000;

/** A subject id: 1–256 characters, no control characters. */
const subjectId = z.string().min(1).max(256).regex(/^[^\x00-\x1f\x7f]+$/, { error: 'expected no control characters' });
const planName = z.string().min(1).max(64);
/** An RFC 3339 instant with an offset (`2026-07-01T00:00:00Z`), as a Date. */
const instant = z.iso.datetime({ offset: true, error: 'expected an RFC 3339 date-time, e.g. 2026-07-01T00:00:00Z' }).transform((value) => new Date(value));
const windowLimits = z.partialRecord(z.enum(CALENDAR_WINDOW_NAMES), z.int().min(1).max(MAX_LIMIT));
/** A quota's limits may also name its lifetime window. */
const quotaLimits = z.partialRecord(z.enum(WINDOW_NAMES), z.int().min(1).max(MAX_LIMIT));
const metricName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, { error: 'expected a metric name (lowercase letters, digits, "-", "_")' });

/** Per-subject limits that replace the plan's, window by window: `{ limits: { hour: 500 }, quotas: { search: { month: 10 } } }`. */
const overridesSchema = z.strictObject({
  limits: windowLimits.optional(),
  quotas: z.record(metricName, quotaLimits).optional(),
});

const createSubjectBody = z.strictObject({
  // `<subject>/key:<keyId>` is how a key's counters are named under `limit_by: key` (core/counting-id.ts).
  id: subjectId.refine((id) => !looksLikeKeyCountingId(id), { error: 'must not end in "/key:<key id>" (the name of a key\'s counters)' }),
  plan: planName,
  metadata: z.record(z.string(), z.unknown()).optional(),
  overrides: overridesSchema.optional(),
});

const setPlanBody = z.strictObject({ plan: planName });
export const setOverridesBody = z.strictObject({ overrides: overridesSchema.nullable() });

export const createKeyBody = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  scopes: z.array(z.string().regex(/^[\x21-\x7e]{1,128}$/, { error: 'expected 1–128 visible ASCII characters' })).max(64).optional(),
  expires_at: instant.optional(),
});

/** Longest rotation grace: 30 days, in ms. */
const MAX_GRACE_MS = 30 * 86_400_000;
export const rotateBody = z.strictObject({ grace_ms: z.int().min(0).max(MAX_GRACE_MS).default(0) });

const creditsBody = z.strictObject({
  metric: metricName,
  amount: z.int().min(1).max(MAX_LIMIT),
  expires_at: instant.optional(),
  reason: z.string().min(1).max(500).optional(),
});

const pageSize = z
  .string()
  .regex(/^\d{1,4}$/, { error: 'expected an integer 1–1000' })
  .transform(Number)
  .pipe(z.int().min(1, { error: 'expected an integer 1–1000' }).max(1000, { error: 'expected an integer 1–1000' }));

export const listSubjectsQuery = z.strictObject({ cursor: z.string().min(1).max(256).optional(), limit: pageSize.optional() });

export const auditQuery = z.strictObject({
  subject: subjectId.optional(),
  target: z.string().min(1).max(512).optional(),
  from: instant.optional(),
  to: instant.optional(),
  cursor: z.string().min(1).max(64).refine(isAuditCursor, { error: 'not a cursor this API handed out' }).optional(),
  limit: pageSize.optional(),
});

export const eventsQuery = z.strictObject({
  subject: subjectId.optional(),
  type: z.enum(QUOTA_EVENT_TYPES).optional(),
  status: z.enum(EVENT_STATUSES).optional(),
  since: instant.optional(),
  cursor: z.string().min(1).max(200).refine(isEventCursor, { error: 'not a cursor this API handed out' }).optional(),
  limit: pageSize.optional(),
});

export const historyQuery = z.strictObject({
  granularity: z.enum(CALENDAR_WINDOW_NAMES).default('day'),
  /** Under `limit_by: key`: the history of one of the subject's keys (admin API only). */
  key: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'expected a key id' }).optional(),
  from: instant.optional(),
  to: instant.optional(),
  cursor: z.string().min(1).max(64).optional(),
  limit: pageSize.optional(),
});

/** A percent of a limit in a query string: an integer 1–1000. */
const percent = z
  .string()
  .regex(/^\d{1,4}$/, { error: 'expected an integer 1–1000' })
  .transform(Number)
  .pipe(z.int().min(1, { error: 'expected an integer 1–1000' }).max(1000, { error: 'expected an integer 1–1000' }));

export const nearLimitsQuery = z.strictObject({
  threshold: percent.default(80),
  plan: planName.optional(),
  cursor: z.string().min(1).max(600).optional(),
  limit: pageSize.optional(),
});

export const topConsumersQuery = z.strictObject({
  policy: z.string().min(1).max(200).default('month'),
  period: z
    .union([z.literal('current'), instant], { error: 'expected "current" or an RFC 3339 date-time, e.g. 2026-07-01T00:00:00Z' })
    .default('current'),
  cursor: z.string().min(1).max(600).optional(),
  limit: pageSize.optional(),
});

/** A span back from now: `<n>m` (minutes) or `<n>h` (hours), 1 minute to 24 hours, as minutes. */
const minutesSpan = z
  .string()
  .regex(/^[1-9]\d{0,3}[mh]$/, { error: 'expected minutes or hours, 1m–24h, e.g. 15m or 1h' })
  .transform((value) => Number(value.slice(0, -1)) * (value.endsWith('h') ? 60 : 1))
  .pipe(z.int().max(1440, { error: 'expected minutes or hours, 1m–24h, e.g. 15m or 1h' }));

export const denialsQuery = z.strictObject({
  window: minutesSpan.default(60),
  subject: subjectId.optional(),
  cursor: z.string().min(1).max(600).optional(),
  limit: pageSize.optional(),
});

/** A string that passes `base`, and for which `problem` finds nothing (its message otherwise). */
function checkedAgainstConfig(base: z.ZodString, problem: (value: string) => string | undefined) {
  return base.superRefine((value, ctx) => {
    const message = problem(value);
    if (message !== undefined) ctx.addIssue({ code: 'custom', message, input: value });
  });
}

/**
 * The bodies whose fields are checked against gateway.yaml (a plan it
 * defines, a metric some plan meters), built once per config: a request
 * with several bad fields hears of every one in one answer, the
 * config-dependent ones included.
 */
export function configuredBodies(plans: GatewayConfig['plans']) {
  const configuredPlan = checkedAgainstConfig(planName, (plan) => unknownPlanProblem(plans, plan));
  const meteredMetric = checkedAgainstConfig(metricName, (metric) => unmeteredMetricProblem(plans, metric));
  return {
    createSubject: createSubjectBody.extend({ plan: configuredPlan }),
    setPlan: setPlanBody.extend({ plan: configuredPlan }),
    credits: creditsBody.extend({ metric: meteredMetric }),
  };
}
