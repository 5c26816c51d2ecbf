import { randomBytes } from 'node:crypto';
import { generateApiKey, hashApiKey } from '../../src/core/api-key.js';
import { insertApiKey } from '../../src/db/api-keys.js';
import type { Database, JsonObject } from '../../src/db/database.js';
import { createSubject, getSubject } from '../../src/db/subjects.js';

/** A key stored in the database by a test: the plain key, its hash and its id. */
export interface StoredTestKey {
  readonly key: string;
  readonly hash: string;
  readonly id: string;
}

/** Creates the subject when it does not exist yet, then stores a new key for it. */
export async function storeTestKey(
  db: Database,
  options: { subject: string; plan?: string; overrides?: JsonObject; expiresAt?: Date },
): Promise<StoredTestKey> {
  const key = generateApiKey('qg');
  const hash = hashApiKey(key);
  const id = `k_${randomBytes(6).toString('hex')}`;
  await db.transaction(async (tx) => {
    if ((await getSubject(tx, options.subject)) === undefined) {
      await createSubject(tx, { id: options.subject, plan: options.plan ?? 'small', overrides: options.overrides ?? null });
    }
    const stored = await insertApiKey(tx, {
      id,
      subjectId: options.subject,
      displayPrefix: key.slice(0, 7),
      keyHash: hash,
      expiresAt: options.expiresAt ?? null,
    });
    if (stored === undefined) throw new Error(`no subject ${options.subject}`);
  });
  return { key, hash, id };
}
