import type { DenialFleetCounter, DenialIncrement } from '../core/denial-fleet.js';
import type { RedisClient } from './client.js';
import { denialCounterKey } from './keys.js';

/** How long a minute's counter lives after its last addition, in ms: the minute, and one more. */
const COUNTER_TTL_MS = 120_000;

/**
 * The fleet's denials per subject and minute on Redis: one INCRBY and one
 * PEXPIRE per subject that had denials, in one MULTI each (the two keys of
 * a subject share its slot), all sent at once (one round trip's worth on
 * one connection). INCRBY's reply is the total after this instance's
 * addition: the instance whose addition crosses a threshold is the only
 * one to see it cross.
 */
export class RedisDenialCounter implements DenialFleetCounter {
  constructor(
    private readonly client: RedisClient,
    private readonly keyPrefix: string,
  ) {}

  async add(increments: readonly DenialIncrement[]): Promise<number[]> {
    return Promise.all(
      increments.map(async (increment) => {
        const key = denialCounterKey(this.keyPrefix, increment.subject, Math.floor(increment.minuteMs / 60_000));
        const replies = await this.client.multi().incrby(key, increment.count).pexpire(key, COUNTER_TTL_MS).exec();
        const [error, total] = replies?.[0] ?? [new Error('MULTI was discarded'), undefined];
        if (error !== null) throw error;
        return Number(total);
      }),
    );
  }
}
