import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { periodOf, secondsUntil } from '../../src/core/calendar.js';
import { windowPolicy } from '../../src/core/policy.js';
import { CALENDAR_WINDOW_NAMES } from '../../src/core/windows.js';
import { closeRedisClient, createRedisClient, type RedisClient, waitUntilReady } from '../../src/redis/client.js';
import { registerScripts, runConsumeScript } from '../../src/redis/scripts.js';
import { deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';

/**
 * lua/consume.lua computes calendar periods itself (from Redis TIME, or from
 * the test-only `now_override_ms`). These tests inject timestamps and hold
 * the script's answer to src/core/calendar.ts, which the memory limiter uses.
 */

const DAY_MS = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** A small seeded PRNG (mulberry32), so the random timestamps are the same every run. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The instant itself and its neighbours: the last ms before it, 1 ms and 1 s after it. */
const around = (ms: number) => [ms - 1_000, ms - 1, ms, ms + 1, ms + 999, ms + 1_000];

const boundaries: Array<[string, number]> = [
  ['the epoch', Date.UTC(1970, 0, 1) + 1_000],
  ['31-day January → February', Date.UTC(2026, 1, 1)],
  ['28-day February → March', Date.UTC(2026, 2, 1)],
  ['30-day April → May', Date.UTC(2026, 4, 1)],
  ['31-day July → August', Date.UTC(2026, 7, 1)],
  ['leap February 2028 → March', Date.UTC(2028, 2, 1)],
  ['leap day 2028', Date.UTC(2028, 1, 29)],
  ['leap February 2000 → March (divisible by 400)', Date.UTC(2000, 2, 1)],
  ['leap day 2000', Date.UTC(2000, 1, 29)],
  ['no leap day in 2100 (divisible by 100)', Date.UTC(2100, 2, 1)],
  ['February 2400 (leap again)', Date.UTC(2400, 2, 1)],
  ['December → January', Date.UTC(2027, 0, 1)],
  ['December 1999 → January 2000', Date.UTC(2000, 0, 1)],
  ['top of an hour', Date.UTC(2026, 5, 15, 11)],
  ['midnight mid-month', Date.UTC(2026, 5, 16)],
  ['2038 (past 2^31 seconds)', Date.UTC(2038, 0, 19, 3, 14, 8)],
];

const random = seededRandom(20_260_615);
const randomTimestamps = Array.from({ length: 200 }, () => Math.floor(random() * Date.UTC(2200, 0, 1)));
// Last milliseconds of every month of a leap and a common year.
const monthEnds = [2027, 2028].flatMap((year) => Array.from({ length: 12 }, (_, m) => Date.UTC(year, m + 1, 1) - 1));

describe('consume.lua calendar periods match src/core/calendar.ts', () => {
  const keyPrefix = testKeyPrefix('calendar');
  const policies = CALENDAR_WINDOW_NAMES.map((window) => windowPolicy(window, 1_000_000_000));
  let client: RedisClient;
  beforeAll(async () => {
    client = createRedisClient({ url: 'redis://127.0.0.1:6379', command_timeout_ms: 2_000, connect_timeout_ms: 1_000, key_prefix: keyPrefix });
    client.on('error', () => {});
    await waitUntilReady(client, 5_000);
    registerScripts(client);
  });
  afterAll(async () => {
    await deleteKeysWithPrefix(client, keyPrefix);
    await closeRedisClient(client);
  });

  /** Every window's [start, end, periodSeconds, resetSeconds] as the script answers for `nowMs`. */
  async function scriptPeriods(nowMs: number) {
    const decision = await runConsumeScript(
      client,
      { subject: 'calendar', policies, cost: 1 },
      { keyPrefix, inFlightTtlMs: 1_000, nowOverrideMs: nowMs },
    );
    if (!decision.allowed || decision.receipt === undefined) throw new Error('expected a charge');
    const starts = decision.receipt.charges.map((charge) => charge.periodStartMs);
    return decision.policies.map((state, i) => ({
      window: state.window,
      start: iso(starts[i]!),
      end: iso(starts[i]! + state.periodSeconds * 1000),
      resetSeconds: state.resetSeconds,
    }));
  }

  function expectedPeriods(nowMs: number) {
    return CALENDAR_WINDOW_NAMES.map((window) => {
      const period = periodOf(window, nowMs);
      return { window, start: iso(period.startMs), end: iso(period.endMs), resetSeconds: secondsUntil(period.endMs, nowMs) };
    });
  }

  it.each(boundaries)('around %s', async (_, instantMs) => {
    for (const nowMs of around(instantMs)) {
      expect(await scriptPeriods(nowMs), iso(nowMs)).toEqual(expectedPeriods(nowMs));
    }
  });

  it('in the last millisecond of every month of 2027 and 2028', async () => {
    for (const nowMs of monthEnds) expect(await scriptPeriods(nowMs), iso(nowMs)).toEqual(expectedPeriods(nowMs));
  });

  it('at 200 seeded random instants from 1970 to 2200', async () => {
    for (const nowMs of randomTimestamps) {
      expect(await scriptPeriods(nowMs), iso(nowMs)).toEqual(expectedPeriods(nowMs));
    }
  });

  it('gives February 28 days in 2100, 29 in 2000 and 2028, and a month 28–31 days', async () => {
    const monthDays = async (nowMs: number) => (await scriptPeriods(nowMs))[4]!;
    const days = async (y: number, m: number) => {
      const month = await monthDays(Date.UTC(y, m, 10));
      return (Date.parse(month.end) - Date.parse(month.start)) / DAY_MS;
    };
    expect([await days(2100, 1), await days(2000, 1), await days(2028, 1), await days(2026, 1)]).toEqual([28, 29, 29, 28]);
    expect([await days(2026, 0), await days(2026, 3), await days(2026, 11)]).toEqual([31, 30, 31]);
  });
});
