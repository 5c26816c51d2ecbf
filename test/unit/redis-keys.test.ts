import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { counterKey, idempotencyRecordKey, subjectHashTag } from '../../src/redis/keys.js';

describe('Redis key builder', () => {
  it('builds <prefix>:v1:{<subject>}:<counterId> for a policy counter', () => {
    expect(counterKey('qg', 'acme', 'w:hour')).toBe('qg:v1:{acme}:w:hour');
    expect(counterKey('qg', 'acme', 'q:search:month')).toBe('qg:v1:{acme}:q:search:month');
  });

  it('keys an idempotency record by the SHA-256 of the client key, under the subject', () => {
    const digest = createHash('sha256').update('order-1').digest('hex');
    expect(idempotencyRecordKey('qg', 'acme', 'order-1')).toBe(`qg:v1:{acme}:idem2:${digest}`);
    expect(idempotencyRecordKey('qg', 'other', 'order-1')).not.toBe(idempotencyRecordKey('qg', 'acme', 'order-1'));
  });

  it('keeps braces in a subject from breaking or emptying the hash tag', () => {
    expect(subjectHashTag('a}b')).toBe('{a%7Db}');
    expect(subjectHashTag('}')).toBe('{%7D}');
    expect(subjectHashTag('{x}')).toBe('{%7Bx%7D}');
    const tag = subjectHashTag('}{evil}');
    expect(tag.slice(1, -1)).not.toMatch(/[{}]/);
  });

  it('encodes subjects injectively: look-alikes get different keys', () => {
    const subjects = ['a}b', 'a%7Db', 'a%257Db', 'a%b', 'a%25b'];
    expect(new Set(subjects.map(subjectHashTag)).size).toBe(subjects.length);
  });

  it('leaves ordinary subjects readable (IPs, ids, JWT subs)', () => {
    expect(counterKey('qg', '203.0.113.9', 'w:minute')).toBe('qg:v1:{203.0.113.9}:w:minute');
    expect(counterKey('qg', 'auth0|5f7c:x', 'w:day')).toBe('qg:v1:{auth0|5f7c:x}:w:day');
  });
});
