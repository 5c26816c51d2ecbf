import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../src/usage/webhook-backoff.js';

describe('webhook retry backoff (exponential, full jitter)', () => {
  it('draws retry n from [0, min(max, base × 2^(n−1))]', () => {
    const top = () => 0.999_999_999;
    expect([1, 2, 3, 4, 5, 6].map((attempt) => backoffDelayMs(attempt, 1_000, 20_000, top))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 20_000]);
    expect([1, 2, 3].map((attempt) => backoffDelayMs(attempt, 1_000, 20_000, () => 0))).toEqual([0, 0, 0]);
    expect(backoffDelayMs(3, 1_000, 20_000, () => 0.5)).toBe(2_000);
  });

  it('stays at the cap for any number of attempts', () => {
    expect(backoffDelayMs(1_000, 1_000, 300_000, () => 0.999_999_999)).toBe(300_000);
  });
});
