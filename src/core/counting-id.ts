import type { Identity } from './identity.js';
import type { Plan } from './plan.js';

/**
 * The id a subject's counters are kept under. A plan with `limit_by:
 * subject` (the default) counts every request of a subject together: the
 * counting id is the subject. With `limit_by: key`, each API key of the
 * subject counts apart (as Kong's `limit_by: credential`):
 * `<subject>/key:<keyId>`. Its Redis keys get their own hash tag, its
 * ledger rows their own `usage.subject_id`; a caller without a key id (a
 * JWT, `auth: none`) counts under the subject.
 *
 * Key ids are 1–64 of [A-Za-z0-9_.-] (no `/`), so the last `/key:` of a
 * counting id separates it. A subject id that itself ends in
 * `/key:<something>` would read as a key of another subject: the admin API
 * refuses such ids.
 */

/** What separates a subject from its key id in a counting id. */
const KEY_COUNTING_SEPARATOR = '/key:';

const KEY_COUNTING_ID = /^(.+)\/key:([A-Za-z0-9_.-]{1,64})$/;

/** The counting id of a subject's key. */
export function keyCountingId(subject: string, keyId: string): string {
  return `${subject}${KEY_COUNTING_SEPARATOR}${keyId}`;
}

/** The subject and key of a counting id (no key: the subject's own counters). */
export function parseCountingId(countingId: string): { readonly subject: string; readonly keyId: string | undefined } {
  const match = KEY_COUNTING_ID.exec(countingId);
  return match === null ? { subject: countingId, keyId: undefined } : { subject: match[1]!, keyId: match[2]! };
}

/** Whether a subject id would read as a key's counting id (refused for new subjects). */
export function looksLikeKeyCountingId(subjectId: string): boolean {
  return KEY_COUNTING_ID.test(subjectId);
}

/**
 * The counting id of a caller on a plan, built once per Identity object
 * (the key caches keep one per cached key record, so a hot key builds it
 * once) and kept as long as the Identity lives. A plan that counts by
 * subject, and a caller without a key id, cost one property read.
 */
export class CountingIds {
  readonly #byIdentity = new WeakMap<Identity, string>();

  of(plan: Pick<Plan, 'limitByKey'>, identity: Identity): string {
    if (!plan.limitByKey || identity.keyId === undefined) return identity.subject;
    let id = this.#byIdentity.get(identity);
    if (id === undefined) this.#byIdentity.set(identity, (id = keyCountingId(identity.subject, identity.keyId)));
    return id;
  }
}

/** The counting id of a caller on a plan, uncached (the usage endpoints; the limit step uses CountingIds). */
export function countingIdOf(plan: Pick<Plan, 'limitByKey'>, identity: Identity): string {
  return plan.limitByKey && identity.keyId !== undefined ? keyCountingId(identity.subject, identity.keyId) : identity.subject;
}
