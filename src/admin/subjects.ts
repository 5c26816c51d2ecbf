import { GatewayError } from '../core/errors.js';
import type { JsonObject, Page, Transaction } from '../db/database.js';
import {
  createSubject,
  deleteSubject,
  getSubject,
  listSubjects,
  lockSubject,
  reactivateSubject,
  setSubjectOverrides,
  setSubjectPlan,
  type Subject,
  suspendSubject,
} from '../db/subjects.js';
import { type AdminContext, audited, subjectNotFound, subjectTarget } from './admin-context.js';
import { checkPlan } from './plan-checks.js';

/**
 * Subjects: create, read, list, set plan, set overrides, suspend,
 * reactivate, delete. Each change but a creation tells the key caches
 * (a new subject has nothing cached).
 */

export interface NewSubjectInput {
  readonly id: string;
  readonly plan: string;
  readonly metadata?: JsonObject | undefined;
  readonly overrides?: JsonObject | null | undefined;
}

/** Creates a subject; 400 for a plan gateway.yaml lacks, 409 `subject_exists` when the id is taken. */
export async function createSubjectAudited(ctx: AdminContext, input: NewSubjectInput): Promise<Subject> {
  checkPlan(ctx.plans, input.plan);
  return audited(ctx, 'subject.create', async (tx) => {
    const created = await createSubject(tx, {
      id: input.id,
      plan: input.plan,
      ...(input.metadata === undefined ? {} : { metadata: input.metadata }),
      ...(input.overrides === undefined ? {} : { overrides: input.overrides }),
    });
    if (created === undefined) throw new GatewayError('subject_exists', `The subject "${input.id}" exists.`);
    return { result: created, target: subjectTarget(created.id), subjectId: created.id, details: { plan: created.plan } };
  });
}

/** The subject; 404 `subject_not_found`. */
export async function requireSubject(ctx: Pick<AdminContext, 'db'>, id: string): Promise<Subject> {
  const subject = await getSubject(ctx.db, id);
  if (subject === undefined) throw subjectNotFound(id);
  return subject;
}

/** One page of subjects in id order; `cursor` is the previous page's `nextCursor`. */
export function listSubjectsPage(ctx: Pick<AdminContext, 'db'>, page: { readonly limit: number; readonly cursor?: string | undefined }): Promise<Page<Subject>> {
  return listSubjects(ctx.db, { limit: page.limit, ...(page.cursor === undefined ? {} : { cursor: page.cursor }) });
}

/** Moves the subject to `plan` (400 for a plan gateway.yaml lacks). */
export async function setPlanAudited(ctx: AdminContext, id: string, plan: string): Promise<Subject> {
  checkPlan(ctx.plans, plan);
  const updated = await audited(ctx, 'subject.set_plan', async (tx) => {
    const before = await lockSubject(tx, id);
    if (before === undefined) throw subjectNotFound(id);
    const updated = (await setSubjectPlan(tx, id, plan))!;
    return { result: updated, target: subjectTarget(id), subjectId: id, details: { from: before.plan, to: plan } };
  });
  await ctx.subjectChanged(id);
  return updated;
}

/** Replaces the subject's overrides (null removes them). */
export async function setOverridesAudited(ctx: AdminContext, id: string, overrides: JsonObject | null): Promise<Subject> {
  const updated = await audited(ctx, 'subject.set_overrides', async (tx) => {
    const updated = await setSubjectOverrides(tx, id, overrides);
    if (updated === undefined) throw subjectNotFound(id);
    return { result: updated, target: subjectTarget(id), subjectId: id, details: { overrides } };
  });
  await ctx.subjectChanged(id);
  return updated;
}

/** Suspends the subject: its keys answer 403 `subject_suspended`. */
export async function suspendAudited(ctx: AdminContext, id: string): Promise<Subject> {
  return changeSubject(ctx, id, 'subject.suspend', suspendSubject);
}

/** Lifts a suspension. */
export async function reactivateAudited(ctx: AdminContext, id: string): Promise<Subject> {
  return changeSubject(ctx, id, 'subject.reactivate', reactivateSubject);
}

/** One audited change of an existing subject (404 when there is none), then the caches are told. */
async function changeSubject(
  ctx: AdminContext,
  id: string,
  action: string,
  change: (tx: Transaction, id: string) => Promise<Subject | undefined>,
): Promise<Subject> {
  const updated = await audited(ctx, action, async (tx) => {
    const updated = await change(tx, id);
    if (updated === undefined) throw subjectNotFound(id);
    return { result: updated, target: subjectTarget(id), subjectId: id };
  });
  await ctx.subjectChanged(id);
  return updated;
}

/** Deletes the subject and its keys (its usage, credits and audit rows stay). */
export async function deleteSubjectAudited(ctx: AdminContext, id: string): Promise<void> {
  await audited(ctx, 'subject.delete', async (tx) => {
    if (!(await deleteSubject(tx, id))) throw subjectNotFound(id);
    return { result: undefined, target: subjectTarget(id), subjectId: id };
  });
  await ctx.subjectChanged(id);
}
