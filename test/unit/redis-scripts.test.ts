import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { coveredByCredits, quotaPolicy, windowPolicy, withThresholds } from '../../src/core/policy.js';
import { ConsumeCallParts, consumeScriptCall, luaDirectory, parseConsumeReply, ScriptReplyError } from '../../src/redis/scripts.js';
import { metersBesides } from '../../src/core/policy.js';

const ROOT = resolve(import.meta.dirname, '../..');
const input = {
  subject: 'acme',
  cost: 2,
  policies: [windowPolicy('hour', 10), quotaPolicy('search', 'month', 100)],
};
const HOUR_START = Date.UTC(2026, 5, 15, 10) / 1000;
const MONTH_START = Date.UTC(2026, 5, 1) / 1000;

describe('parseConsumeReply', () => {
  it('turns an admission into policy states and a receipt naming the periods charged', () => {
    const reply = [1, 0, 2, 10, 8, 1800, 3600, HOUR_START, 0, 100, 98, 1_344_600, 2_592_000, MONTH_START, 0];
    expect(parseConsumeReply(reply, input)).toEqual({
      allowed: true,
      policies: [
        { name: 'hour', kind: 'window', window: 'hour', limit: 10, remaining: 8, resetSeconds: 1800, periodSeconds: 3600 },
        {
          name: 'search.month', kind: 'quota', window: 'month', limit: 100, remaining: 98, resetSeconds: 1_344_600,
          periodSeconds: 2_592_000,
        },
      ],
      receipt: {
        subject: 'acme',
        cost: 2,
        charges: [
          { counterId: 'w:hour', periodStartMs: HOUR_START * 1000 },
          { counterId: 'q:search:month', periodStartMs: MONTH_START * 1000 },
        ],
      },
    });
  });

  it('words a denial as the memory limiter does (quota wins, latest reset)', () => {
    const reply = [0, 0, 2, 10, 0, 1800, 3600, HOUR_START, 1, 100, 1, 1_344_600, 2_592_000, MONTH_START, 1];
    expect(parseConsumeReply(reply, input)).toMatchObject({
      allowed: false,
      reason: 'quota',
      violated: ['hour', 'search.month'],
      retryAfterSeconds: 1_344_600,
    });
  });

  it('leaves a policy paid by credits (violated 2) out of the receipt, and reads the balance and credits charged that end the reply', () => {
    const covered = { ...input, policies: [windowPolicy('hour', 10), coveredByCredits(quotaPolicy('search', 'month', 100), 'search')] };
    const reply = [1, 0, 2, 10, 8, 1800, 3600, HOUR_START, 0, 100, 0, 1_344_600, 2_592_000, MONTH_START, 2, 5, 2];
    expect(parseConsumeReply(reply, covered)).toMatchObject({
      allowed: true,
      receipt: { charges: [{ counterId: 'w:hour', periodStartMs: HOUR_START * 1000 }] },
      credits: { metric: 'search', balance: 5, charged: 2 },
    });
    // Without the two credit fields, the reply is not one for these policies.
    expect(() => parseConsumeReply(reply.slice(0, -2), covered)).toThrow(ScriptReplyError);
  });

  it.each([
    ['not an array', 'OK'],
    ['too short', [1, 0]],
    ['a non-integer', [1, 0, 1, 10, 'x', 1, 1, 1, 0]],
    ['a length that disagrees with the count', [1, 0, 2, 10, 8, 1800, 3600, HOUR_START, 0]],
    ['a fresh decision for other policies', [1, 0, 1, 10, 8, 1800, 3600, HOUR_START, 0]],
  ])('rejects a malformed reply: %s', (_, reply) => {
    expect(() => parseConsumeReply(reply, input)).toThrow(ScriptReplyError);
  });
});

describe('lua/ scripts', () => {
  it('are found from src/redis (tsx) and from dist/src/redis (compiled, and /app in the image)', () => {
    expect(luaDirectory(join(ROOT, 'src/redis'))).toBe(join(ROOT, 'lua'));
    const image = mkdtempSync(join(tmpdir(), 'quotagate-image-'));
    try {
      mkdirSync(join(image, 'lua'));
      writeFileSync(join(image, 'lua/consume.lua'), '');
      expect(luaDirectory(join(image, 'dist/src/redis'))).toBe(join(image, 'lua'));
      expect(() => luaDirectory(join(tmpdir(), 'nowhere/src/redis'))).toThrow(/consume\.lua not found/);
    } finally {
      rmSync(image, { recursive: true, force: true });
    }
  });

  it.each(['consume.lua', 'refund.lua', 'probe.lua'])('%s opens with a header documenting KEYS, ARGV and the reply', (file) => {
    const header = /^--\[\[([\s\S]*?)\]\]/.exec(readFileSync(join(ROOT, 'lua', file), 'utf8'))?.[1] ?? '';
    expect(header).toMatch(/^KEYS\b/m);
    expect(header).toMatch(/^ARGV\b/m);
    expect(header).toMatch(/^Reply\b/m);
  });
});

describe('ConsumeCallParts', () => {
  it('gives every call the arguments it would have without it, per subject, minute, meters and Idempotency-Key', () => {
    const policies = [windowPolicy('hour', 10), quotaPolicy('search', 'month', 5)];
    const meters = metersBesides([windowPolicy('hour', 10)]);
    const parts = new ConsumeCallParts();
    const options = { keyPrefix: 'qg', inFlightTtlMs: 1_000, trackUsage: true };
    const cases = [
      { subject: 'acme', policies, cost: 1, requestId: 'r1', chargeMinute: 7 },
      { subject: 'acme', policies, cost: 2, requestId: 'r2', chargeMinute: 8 },
      { subject: '{braces}', policies, cost: 1, requestId: 'r3', chargeMinute: 8 },
      { subject: 'acme', policies, meters, cost: 1, requestId: 'r4', chargeMinute: 8 },
      { subject: 'acme', policies: policies.slice(0, 1), cost: 1, requestId: 'r5', chargeMinute: 9 },
    ];
    for (const input of cases) {
      expect(consumeScriptCall(input, { ...options, callParts: parts })).toEqual(consumeScriptCall(input, options));
    }
    const idempotency = { recordKey: 'qg:v1:{acme}:idem2:x', fingerprint: 'f', attempt: 'a' };
    expect(consumeScriptCall(cases[0]!, { ...options, callParts: parts }, idempotency)).toEqual(consumeScriptCall(cases[0]!, options, idempotency));
    // Spot-check the layout the script reads: 2 counters + 3 keys + the charge records of minute 7.
    expect(consumeScriptCall(cases[0]!, { ...options, callParts: parts }).slice(0, 7)).toEqual([
      6,
      'qg:v1:{acme}:w:hour',
      'qg:v1:{acme}:q:search:month',
      'qg:v1:{acme}:dirty',
      'qg:v1:{acme}:hydrated',
      'qg:v1:dirty-index',
      'qg:v1:{acme}:charges:7',
    ]);
    // …and the ARGV it reads once rebuilt: cost, no clock override, the in-flight TTL, the grace, 2 counters, a ledger, the marker TTL, no options.
    expect(argvAsRead(consumeScriptCall(cases[0]!, { ...options, callParts: parts }))).toEqual([
      1, '', 1_000, '60000', '2', 1, String(40 * 86_400_000), '', '0',
      'hour', '10', 'w:hour', 'month', '5', 'q:search:month', '180000', 'r1',
    ]);
  });
});

/**
 * The ARGV consume.lua reads (the layout of its header), rebuilt from a
 * call's arguments as sent, the way the script rebuilds it: the fields that
 * travel as one argument come back as strings.
 */
function argvAsRead(args: ReadonlyArray<string | number>): Array<string | number | undefined> {
  const sent = args.slice(1 + Number(args[0]));
  const fixed = String(sent[4]).split('\n');
  return [sent[0], sent[1], sent[2], fixed[0], fixed[1], sent[3], fixed[2], fixed[3], fixed[4], ...fixed.slice(5), ...sent.slice(5)];
}

describe('consume.lua calls with events', () => {
  const policies = [windowPolicy('hour', 10), withThresholds(quotaPolicy('search', 'month', 1_000), [80, 95])];
  const base = { keyPrefix: 'qg', inFlightTtlMs: 1_000 };
  const call = { subject: 'acme', policies, cost: 1, requestId: 'r1', chargeMinute: 7, plan: 'pro' };

  it('adds nothing without events, whatever the thresholds', () => {
    const plain = { ...call, policies: [windowPolicy('hour', 10), quotaPolicy('search', 'month', 1_000)] };
    expect(consumeScriptCall(call, base)).toEqual(consumeScriptCall(plain, base));
  });

  it('adds the thresholds in units, the event stream as an option key, the plan, and the subject as the last argument', () => {
    const args = consumeScriptCall(call, { ...base, events: { streamMaxLength: 5_000 } });
    // 2 counters, marker, hydration marker, usage index, charge records, the stream.
    expect(args[0]).toBe(7);
    expect(args[7]).toBe('qg:v1:events');
    const argv = argvAsRead(args);
    expect(argv[7]).toBe('t,2,800:950,80:95,search.month;e,1,5000,pro');
    expect(argv[8]).toBe('1');
    expect(argv.at(-1)).toBe('acme');
    // On a Cluster, the stream of the subject's slot.
    expect(consumeScriptCall(call, { ...base, slot: 42, events: { streamMaxLength: 5_000 } })[7]).toMatch(/^qg:v1:\{.+\}:events$/);
  });

  it('names the credits keys first and the stream after them, and events a plan without thresholds covered by credits', () => {
    const covered = { ...call, policies: [coveredByCredits(quotaPolicy('search', 'month', 10), 'search')] };
    const args = consumeScriptCall(covered, { ...base, events: { streamMaxLength: 5_000 } });
    expect(args.slice(6, 9)).toEqual(['qg:v1:{acme}:credits:search', 'qg:v1:{acme}:c:search:month', 'qg:v1:events']);
    expect(argvAsRead(args)[7]).toBe('c,1,1,c:search:month;e,3,5000,pro');
    // No thresholds and no credits: nothing can emit, so the call is the plain one.
    const plain = { ...call, policies: [windowPolicy('hour', 10)] };
    expect(consumeScriptCall(plain, { ...base, events: { streamMaxLength: 5_000 } })).toEqual(consumeScriptCall(plain, base));
  });

  it('keeps the call parts per plan name', () => {
    const parts = new ConsumeCallParts();
    const options = { ...base, events: { streamMaxLength: 5_000 }, callParts: parts };
    for (const plan of ['pro', 'team', 'pro']) {
      expect(consumeScriptCall({ ...call, plan }, options)).toEqual(consumeScriptCall({ ...call, plan }, { ...base, events: { streamMaxLength: 5_000 } }));
    }
  });
});
