import { describe, expect, it } from 'vitest';
import { ManualClock } from '../support/manual-clock.js';
import { windowPolicy } from '../../src/core/policy.js';
import { IdempotencyRecords, RECORD_OVERHEAD_BYTES } from '../../src/limiter/idempotency-records.js';
import { MemoryLimiter } from '../../src/limiter/memory-limiter.js';

const response = (bodyBytes: number) => ({ status: 200, headers: [], body: Buffer.alloc(bodyBytes) });
const record = (bodyBytes?: number) => ({
  fingerprint: 'fp',
  attempt: 'a',
  response: bodyBytes === undefined ? undefined : response(bodyBytes),
  expiresAtMs: 1_000_000,
});

describe('IdempotencyRecords (memory store)', () => {
  it("evicts only a busy subject's own records once it passes its share", () => {
    // Each record: 512 overhead + 1,000 body bytes; a subject may hold 3, all together 12.
    const records = new IdempotencyRecords({ maxBytes: 12 * (RECORD_OVERHEAD_BYTES + 1_000), subjectMaxBytes: 3 * (RECORD_OVERHEAD_BYTES + 1_000) });
    for (const quiet of ['alice', 'bob']) records.set(quiet, 'k', record(1_000));
    for (let i = 0; i < 100; i++) records.set('flood', `k-${i}`, record(1_000));
    expect(records.get('alice', 'k', 0)).toBeDefined();
    expect(records.get('bob', 'k', 0)).toBeDefined();
    expect(['k-96', 'k-97', 'k-98', 'k-99'].map((key) => records.get('flood', key, 0) !== undefined)).toEqual([false, true, true, true]);
    expect(records.bytes).toBe(5 * (RECORD_OVERHEAD_BYTES + 1_000));
  });

  it('past the total, drops the least recently active subjects first', () => {
    const size = RECORD_OVERHEAD_BYTES + 1_000;
    const records = new IdempotencyRecords({ maxBytes: 4 * size, subjectMaxBytes: 2 * size });
    records.set('old', 'k', record(1_000));
    records.set('recent', 'k', record(1_000));
    records.set('busy', 'k1', record(1_000));
    records.get('old', 'k', 0);
    records.set('busy', 'k2', record(1_000));
    // Five records do not fit four: `recent` was the least recently active.
    records.set('new', 'k', record(1_000));
    expect(records.get('recent', 'k', 0)).toBeUndefined();
    expect(records.get('old', 'k', 0)).toBeDefined();
    expect(records.get('busy', 'k2', 0)).toBeDefined();
    expect(records.bytes).toBe(4 * size);
  });

  it('does not keep a record larger than a subject share', () => {
    const records = new IdempotencyRecords({ maxBytes: 10_000, subjectMaxBytes: 2_000 });
    records.set('s', 'k', record());
    records.set('s', 'k', record(5_000));
    expect(records.get('s', 'k', 0)).toBeUndefined();
    expect(records.bytes).toBe(0);
  });

  it('forgets an expired record', () => {
    const records = new IdempotencyRecords({ maxBytes: 10_000, subjectMaxBytes: 10_000 });
    records.set('s', 'k', record());
    expect(records.get('s', 'k', 999_999)).toBeDefined();
    expect(records.get('s', 'k', 1_000_000)).toBeUndefined();
    expect(records.bytes).toBe(0);
  });
});

describe('MemoryLimiter Idempotency-Key lifetimes', () => {
  const policies = [windowPolicy('day', 100)];
  const request = { subject: 's', policies, cost: 1 };
  const claim = { key: 'k', fingerprint: 'fp' };

  function limiter(clock: ManualClock) {
    return new MemoryLimiter({
      clock,
      sweepIntervalMs: 0,
      idempotency: { inFlightTtlMs: 60_000, ttlMs: 3_600_000, maxBytes: 1_000_000, subjectMaxBytes: 100_000 },
    });
  }

  it('frees a key whose request never completed after in_flight_ttl_ms', async () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 15, 10, 30));
    const memory = limiter(clock);
    const first = await memory.consumeIdempotent(request, claim);
    clock.advance(59_999);
    expect(await memory.consumeIdempotent(request, claim)).toEqual({ kind: 'in-flight' });
    clock.advance(1);
    const retried = await memory.consumeIdempotent(request, claim);
    expect(retried.kind).toBe('admitted');
    // The first attempt, completing late, does not overwrite the second's mark.
    if (first.kind !== 'admitted') throw new Error('expected an admission');
    await memory.completeIdempotent(first.ticket, response(10));
    expect(await memory.consumeIdempotent(request, claim)).toEqual({ kind: 'in-flight' });
  });

  it('replays a completed response for ttl_ms from its completion', async () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 15, 10, 30));
    const memory = limiter(clock);
    const first = await memory.consumeIdempotent(request, claim);
    if (first.kind !== 'admitted') throw new Error('expected an admission');
    clock.advance(30_000);
    await memory.completeIdempotent(first.ticket, response(10));
    clock.advance(3_599_999);
    expect((await memory.consumeIdempotent(request, claim)).kind).toBe('replay');
    clock.advance(1);
    expect((await memory.consumeIdempotent(request, claim)).kind).toBe('admitted');
  });
});
