import { GatewayError } from '../core/errors.js';
import type { DenialSpike } from '../core/abuse.js';
import { appendAudit } from '../db/audit-log.js';
import type { Database } from '../db/database.js';
import { type AdminContext, audited, subjectTarget } from './admin-context.js';

/**
 * Lifts a subject's block by an abuse rule at every instance, with its
 * audit row (`subject.unblock`), in one transaction: the block is lifted
 * inside it, so a database that cannot write the row lifts nothing.
 * The subject need not be one the database knows (a JWT caller may be
 * blocked). Resolves to whether it was blocked.
 */
export async function unblockAudited(ctx: AdminContext, subjectId: string): Promise<boolean> {
  const blocks = ctx.blocks;
  if (blocks === undefined) throw new GatewayError('usage_unavailable', 'This gateway cannot reach its limit store.');
  return audited(ctx, 'subject.unblock', async () => {
    let wasBlocked: boolean;
    try {
      wasBlocked = await blocks.unblock(subjectId);
    } catch {
      throw new GatewayError('usage_unavailable', 'The limit store did not answer; retry later.', {}, [['retry-after', '1']]);
    }
    return { result: wasBlocked, target: subjectTarget(subjectId), subjectId, details: { was_blocked: wasBlocked } };
  });
}

/** The audit actor of blocks by an abuse rule. */
const ABUSE_ACTOR = 'gateway:abuse';

/** Writes the audit row of a block by an abuse rule (`subject.block`). */
export async function auditSpikeBlock(db: Database, spike: DenialSpike, nowMs: number): Promise<void> {
  await db.transaction((tx) =>
    appendAudit(tx, {
      at: new Date(nowMs),
      actor: ABUSE_ACTOR,
      action: 'subject.block',
      target: subjectTarget(spike.subject),
      subjectId: spike.subject,
      details: {
        plan: spike.plan,
        denials: spike.denials,
        threshold: spike.threshold,
        minute_start: new Date(spike.minuteMs).toISOString(),
        blocked_until: spike.blockedUntilMs === undefined ? null : new Date(spike.blockedUntilMs).toISOString(),
      },
    }),
  );
}
