import { describe, expect, it } from 'vitest';
import type { AbuseRule } from '../../src/core/abuse.js';
import { CountingIds, keyCountingId, looksLikeKeyCountingId, parseCountingId } from '../../src/core/counting-id.js';
import { LocalDenialCounter } from '../../src/core/denial-fleet.js';
import { DenialTally } from '../../src/core/denial-tally.js';
import type { QuotaEvent } from '../../src/core/quota-events.js';
import { BlockedSubjects, LocalSubjectBlocks } from '../../src/core/subject-blocks.js';
import type { DenialCount } from '../../src/db/denials.js';
import { MemoryEventOutbox } from '../../src/limiter/memory-event-outbox.js';
import { DenialFlusher, denialSpikeEventId } from '../../src/usage/denial-flusher.js';
import { ManualClock } from '../support/manual-clock.js';

const MINUTE = Date.UTC(2026, 5, 15, 10, 30);
const NOTIFY: AbuseRule = { denialsPerMinute: 5, action: 'notify', blockMs: 600_000 };
const BLOCK: AbuseRule = { denialsPerMinute: 5, action: 'block', blockMs: 600_000 };

describe('DenialTally', () => {
  it('counts per subject and minute, hands each count out once, and rolls minutes', () => {
    const tally = new DenialTally(10);
    tally.record('a', 'free', undefined, MINUTE + 1_000);
    tally.record('a', 'free', undefined, MINUTE + 2_000);
    tally.record('b', 'free', NOTIFY, MINUTE + 3_000);
    tally.record('a', 'free', undefined, MINUTE + 61_000);
    expect(tally.drain()).toEqual([
      { subject: 'a', minuteMs: MINUTE, count: 2, plan: 'free', abuse: undefined },
      { subject: 'b', minuteMs: MINUTE, count: 1, plan: 'free', abuse: NOTIFY },
      { subject: 'a', minuteMs: MINUTE + 60_000, count: 1, plan: 'free', abuse: undefined },
    ]);
    expect(tally.drain()).toEqual([]);
    tally.record('a', 'free', undefined, MINUTE + 62_000);
    expect(tally.drain()).toEqual([{ subject: 'a', minuteMs: MINUTE + 60_000, count: 1, plan: 'free', abuse: undefined }]);
  });

  it('counts at most maxSubjects subjects a minute between drains, and the rest as dropped', () => {
    const tally = new DenialTally(2);
    for (const subject of ['a', 'b', 'c', 'c', 'a']) tally.record(subject, 'free', undefined, MINUTE);
    expect(tally.drain().map((entry) => [entry.subject, entry.count])).toEqual([['a', 2], ['b', 1]]);
    expect(tally.dropped).toBe(2);
  });
});

describe('DenialFlusher on the memory store', () => {
  function flusherOf(rule: AbuseRule) {
    const clock = new ManualClock(MINUTE + 10_000);
    const tally = new DenialTally(100);
    const outbox = new MemoryEventOutbox(100, () => clock.now());
    const blocked = new BlockedSubjects();
    const rows: DenialCount[] = [];
    const audited: string[] = [];
    const flusher = new DenialFlusher({
      tally,
      fleet: new LocalDenialCounter(),
      sink: { add: async (counts) => void rows.push(...counts), prune: async () => undefined },
      events: outbox,
      blocks: new LocalSubjectBlocks(blocked, () => clock.now()),
      auditBlock: async (spike) => void audited.push(spike.subject),
      clock,
      intervalMs: 1_000,
    });
    const deny = (subject: string, times: number) => {
      for (let i = 0; i < times; i++) tally.record(subject, 'free', rule, clock.now());
    };
    const events = async (): Promise<QuotaEvent[]> => (await outbox.claim('test', 100, 0)).map((entry) => entry.event);
    return { clock, flusher, deny, events, blocked, rows, audited };
  }

  it('raises one event when a minute passes the threshold, over several flushes, and none again that minute', async () => {
    const { flusher, deny, events, rows, blocked } = flusherOf(NOTIFY);
    deny('acme', 4);
    await flusher.flush();
    deny('acme', 2);
    await flusher.flush();
    deny('acme', 3);
    await flusher.flush();
    const raised = await events();
    expect(raised).toEqual([
      {
        id: denialSpikeEventId('acme', MINUTE),
        type: 'subject.denial_spike',
        timestampMs: MINUTE + 10_000,
        data: {
          subject: 'acme',
          plan: 'free',
          denials: 6,
          threshold: 5,
          minute_start: '2026-06-15T10:30:00.000Z',
          action: 'notify',
          blocked_until: null,
        },
      },
    ]);
    expect(raised[0]!.id).not.toContain('acme');
    expect(blocked.size).toBe(0);
    expect(rows.reduce((sum, row) => sum + row.count, 0)).toBe(9);
  });

  it('does not raise at exactly the threshold, and raises again in another minute', async () => {
    const { clock, flusher, deny, events } = flusherOf(NOTIFY);
    deny('acme', 5);
    await flusher.flush();
    expect(await events()).toEqual([]);
    clock.advance(60_000);
    deny('acme', 6);
    await flusher.flush();
    expect((await events()).map((event) => event.data.minute_start)).toEqual(['2026-06-15T10:31:00.000Z']);
  });

  it('blocks the subject for blockMs with action: block, and audits it', async () => {
    const { clock, flusher, deny, events, blocked, audited } = flusherOf(BLOCK);
    deny('acme', 6);
    await flusher.flush();
    expect(blocked.blockedUntil('acme', clock.now())).toBe(MINUTE + 10_000 + 600_000);
    expect(audited).toEqual(['acme']);
    expect((await events())[0]!.data).toMatchObject({ action: 'block', blocked_until: new Date(MINUTE + 610_000).toISOString() });
    expect(blocked.blockedUntil('acme', MINUTE + 610_000)).toBeUndefined();
  });

  it('keeps rows the database refused for the next flush', async () => {
    const clock = new ManualClock(MINUTE);
    const tally = new DenialTally(100);
    let failing = true;
    const rows: DenialCount[] = [];
    const flusher = new DenialFlusher({
      tally,
      fleet: new LocalDenialCounter(),
      sink: {
        add: async (counts) => {
          if (failing) throw new Error('down');
          rows.push(...counts);
        },
        prune: async () => undefined,
      },
      blocks: new LocalSubjectBlocks(new BlockedSubjects(), () => clock.now()),
      clock,
      intervalMs: 1_000,
    });
    tally.record('acme', 'free', undefined, MINUTE);
    await flusher.flush();
    failing = false;
    tally.record('acme', 'free', undefined, MINUTE);
    await flusher.flush();
    expect(rows.map((row) => row.count)).toEqual([1, 1]);
  });
});

describe('counting ids', () => {
  it("name a key's counters after its subject, and read back", () => {
    expect(keyCountingId('acme', 'k_1')).toBe('acme/key:k_1');
    expect(parseCountingId('acme/key:k_1')).toEqual({ subject: 'acme', keyId: 'k_1' });
    expect(parseCountingId('team/a/key:k_1')).toEqual({ subject: 'team/a', keyId: 'k_1' });
    expect(parseCountingId('acme')).toEqual({ subject: 'acme', keyId: undefined });
    expect(looksLikeKeyCountingId('x/key:k_1')).toBe(true);
    expect(looksLikeKeyCountingId('x/key:')).toBe(false);
  });

  it('are the subject on a plan counting by subject or without a key id, and one string per Identity otherwise', () => {
    const ids = new CountingIds();
    const identity = { subject: 'acme', plan: 'p', keyId: 'k_1' };
    expect(ids.of({ limitByKey: false }, identity)).toBe('acme');
    expect(ids.of({ limitByKey: true }, { subject: 'acme', plan: 'p' })).toBe('acme');
    const first = ids.of({ limitByKey: true }, identity);
    expect(first).toBe('acme/key:k_1');
    expect(ids.of({ limitByKey: true }, identity)).toBe(first);
  });
});
