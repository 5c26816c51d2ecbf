import { describe, expect, it } from 'vitest';
import { PeriodCache, periodOf, secondsUntil } from '../../src/core/calendar.js';

const iso = (ms: number) => new Date(ms).toISOString();

describe('periodOf: calendar-aligned UTC periods', () => {
  it.each([
    ['31-day month (January)', Date.UTC(2026, 0, 31, 23, 59, 59, 999), '2026-01-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z'],
    ['30-day month (April)', Date.UTC(2026, 3, 30, 12), '2026-04-01T00:00:00.000Z', '2026-05-01T00:00:00.000Z'],
    ['28-day February', Date.UTC(2026, 1, 28, 23, 59, 59), '2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z'],
    ['29-day February (leap year)', Date.UTC(2028, 1, 29, 0, 0), '2028-02-01T00:00:00.000Z', '2028-03-01T00:00:00.000Z'],
    ['no leap day in 2100', Date.UTC(2100, 1, 28, 18), '2100-02-01T00:00:00.000Z', '2100-03-01T00:00:00.000Z'],
    ['leap day in 2000', Date.UTC(2000, 1, 29, 18), '2000-02-01T00:00:00.000Z', '2000-03-01T00:00:00.000Z'],
    ['December rolls into the next year', Date.UTC(2026, 11, 31, 23, 59), '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
    ['first instant of a month', Date.UTC(2026, 2, 1), '2026-03-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z'],
  ])('month: %s', (_, nowMs, start, end) => {
    const period = periodOf('month', nowMs);
    expect([iso(period.startMs), iso(period.endMs)]).toEqual([start, end]);
  });

  it('day runs from 00:00 UTC to the next 00:00 UTC, across a month end', () => {
    const period = periodOf('day', Date.UTC(2026, 0, 31, 23, 59, 59, 999));
    expect([iso(period.startMs), iso(period.endMs)]).toEqual(['2026-01-31T00:00:00.000Z', '2026-02-01T00:00:00.000Z']);
    expect(iso(periodOf('day', Date.UTC(2026, 1, 1)).startMs)).toBe('2026-02-01T00:00:00.000Z');
  });

  it('hour resets at the top of the hour, across a day end', () => {
    const period = periodOf('hour', Date.UTC(2026, 5, 30, 23, 59, 59));
    expect([iso(period.startMs), iso(period.endMs)]).toEqual(['2026-06-30T23:00:00.000Z', '2026-07-01T00:00:00.000Z']);
  });

  it('minute and second align to whole units', () => {
    const nowMs = Date.UTC(2026, 5, 15, 10, 30, 45, 250);
    expect(iso(periodOf('minute', nowMs).startMs)).toBe('2026-06-15T10:30:00.000Z');
    expect(iso(periodOf('second', nowMs).endMs)).toBe('2026-06-15T10:30:46.000Z');
  });
});

describe('secondsUntil', () => {
  it('rounds partial seconds up and never answers less than 1', () => {
    expect(secondsUntil(10_000, 8_999)).toBe(2);
    expect(secondsUntil(10_000, 9_000)).toBe(1);
    expect(secondsUntil(10_000, 9_999)).toBe(1);
    expect(secondsUntil(10_000, 10_000)).toBe(1);
  });
});

describe('PeriodCache', () => {
  it('answers as periodOf does across boundaries, forwards and backwards', () => {
    const cache = new PeriodCache();
    const times = [
      Date.UTC(2026, 0, 31, 23, 59, 59, 999),
      Date.UTC(2026, 1, 1, 0, 0, 0, 0),
      Date.UTC(2026, 1, 1, 0, 30),
      Date.UTC(2026, 1, 1, 1, 0),
      Date.UTC(2026, 0, 15, 12, 0),
      Date.UTC(2028, 1, 29, 12, 0),
      Date.UTC(2028, 2, 1, 0, 0),
    ];
    for (const nowMs of times) {
      for (const window of ['second', 'minute', 'hour', 'day', 'month', 'lifetime'] as const) {
        expect(cache.of(window, nowMs)).toEqual(periodOf(window, nowMs));
      }
    }
  });

  it('hands out the same period object while it holds', () => {
    const cache = new PeriodCache();
    const first = cache.of('month', Date.UTC(2026, 5, 2));
    expect(cache.of('month', Date.UTC(2026, 5, 30, 23, 59))).toBe(first);
    expect(cache.of('month', Date.UTC(2026, 6, 1))).not.toBe(first);
  });
});
