import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ConnectionSlots, UpstreamBusyError } from '../../src/proxy/connection-slots.js';

/** An abort signal of the forwarder's kind: an emitter with `aborted` and `reason`. */
class TestSignal extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;
  abort(reason: unknown): void {
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }
}

describe('ConnectionSlots', () => {
  it('hands out capacity slots at once, then makes the rest wait, granting in arrival order as slots come back', async () => {
    const slots = new ConnectionSlots('app', 2, 5_000);
    expect([slots.tryAcquire(), slots.tryAcquire(), slots.tryAcquire()]).toEqual([true, true, false]);
    const granted: string[] = [];
    const first = slots.wait().then(() => granted.push('first'));
    const second = slots.wait().then(() => granted.push('second'));
    expect(slots.waiting).toBe(2);
    slots.release();
    await first;
    expect(granted).toEqual(['first']);
    // A newcomer does not jump the queue while someone waits.
    expect(slots.tryAcquire()).toBe(false);
    slots.release();
    await second;
    expect(granted).toEqual(['first', 'second']);
    expect(slots.inUse).toBe(2);
    slots.release();
    slots.release();
    expect(slots.inUse).toBe(0);
  });

  it('fails a wait with UpstreamBusyError after queueTimeoutMs, and the slot later released stays free', async () => {
    const slots = new ConnectionSlots('app', 1, 20);
    expect(slots.tryAcquire()).toBe(true);
    const error = await slots.wait().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamBusyError);
    expect((error as UpstreamBusyError).message).toBe('no connection to upstream "app" came free within 20 ms');
    expect(slots.waiting).toBe(0);
    slots.release();
    expect(slots.inUse).toBe(0);
    expect(slots.tryAcquire()).toBe(true);
  });

  it('leaves the queue when the signal aborts (the client left), with the signal\'s reason', async () => {
    const slots = new ConnectionSlots('app', 1, 5_000);
    slots.tryAcquire();
    const signal = new TestSignal();
    const waiting = slots.wait(signal).catch((e: unknown) => e);
    signal.abort(new Error('client left'));
    expect(((await waiting) as Error).message).toBe('client left');
    expect(slots.waiting).toBe(0);
    expect(signal.listenerCount('abort')).toBe(0);
    slots.release();
    expect(slots.inUse).toBe(0);
  });
});
