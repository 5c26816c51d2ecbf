import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  StoreCallGate,
  StoreCallTimeoutError,
  StoreConnectionRetiredError,
  StoreQueueTimeoutError,
} from '../../src/limiter/store-call-gate.js';

/** A call the test answers by hand. */
function manualCall<T = string>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  let sent = 0;
  return {
    call: () => {
      sent += 1;
      return promise;
    },
    get sent() {
      return sent;
    },
    resolve,
    reject,
  };
}

const outcome = <T>(promise: Promise<T>) => promise.then((value) => ({ value }), (error: unknown) => ({ error }));

describe('StoreCallGate', () => {
  let nowMs = 0;
  let retirements = 0;
  const gate = (overrides: Partial<ConstructorParameters<typeof StoreCallGate>[0]> = {}) =>
    new StoreCallGate({
      timeoutMs: 100,
      maxInFlight: 1,
      maxQueueWaitMs: 1_000,
      retireConnection: () => (retirements += 1),
      nowMs: () => nowMs,
      ...overrides,
    });
  const advance = async (ms: number) => {
    nowMs += ms;
    await vi.advanceTimersByTimeAsync(ms);
  };

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    nowMs = 0;
    retirements = 0;
  });
  afterEach(() => vi.useRealTimers());

  it('times a call from when it is sent, not while it waits in the queue', async () => {
    const g = gate();
    const first = manualCall();
    const second = manualCall();
    const a = outcome(g.run(first.call));
    const b = outcome(g.run(second.call));
    expect([first.sent, second.sent, g.queued]).toEqual([1, 0, 1]);
    await advance(90);
    first.resolve('a');
    await advance(0);
    expect(second.sent).toBe(1);
    await advance(90); // 180 ms after it was queued, 90 ms after it was sent
    second.resolve('b');
    expect(await a).toEqual({ value: 'a' });
    expect(await b).toEqual({ value: 'b' });
    expect(retirements).toBe(0);
  });

  it('times out a sent call the store does not answer, and retires the connection once', async () => {
    const g = gate({ maxInFlight: 2 });
    const lost = manualCall();
    const alsoInFlight = manualCall();
    const a = outcome(g.run(lost.call));
    const b = outcome(g.run(alsoInFlight.call));
    await advance(100);
    expect(await a).toEqual({ error: new StoreCallTimeoutError(100) });
    expect(retirements).toBe(1);
    // The other call on that connection is lost with it: the same incident, not a second fault.
    alsoInFlight.reject(new Error('Connection is closed.'));
    expect((await b as { error: unknown }).error).toBeInstanceOf(StoreConnectionRetiredError);
    expect(retirements).toBe(1);
  });

  it('retires the connection when the client reports its own command timeout', async () => {
    const g = gate({ isTimeout: (error) => error instanceof Error && error.message === 'Command timed out' });
    const call = manualCall();
    const a = outcome(g.run(call.call));
    call.reject(new Error('Command timed out'));
    expect(await a).toEqual({ error: new Error('Command timed out') });
    expect(retirements).toBe(1);
  });

  it('holds calls until the new connection is ready, so the next one goes out on it', async () => {
    const g = gate({ maxInFlight: 4 });
    const lost = manualCall();
    const a = outcome(g.run(lost.call));
    await advance(100);
    expect(await a).toMatchObject({ error: expect.any(StoreCallTimeoutError) });
    const probe = manualCall();
    const p = outcome(g.run(probe.call));
    await advance(50);
    expect(probe.sent).toBe(0);
    g.connectionReady();
    expect(probe.sent).toBe(1);
    probe.resolve('on the new connection');
    expect(await p).toEqual({ value: 'on the new connection' });
  });

  it('sends the held calls when the new connection fails or does not come within the reconnect timeout', async () => {
    const g = gate({ maxInFlight: 4, reconnectTimeoutMs: 300 });
    const a = outcome(g.run(manualCall().call));
    await advance(100);
    await a;
    const failed = manualCall();
    void outcome(g.run(failed.call));
    g.connectionFailed();
    expect(failed.sent).toBe(1);

    const g2 = gate({ maxInFlight: 4, reconnectTimeoutMs: 300 });
    const b = outcome(g2.run(manualCall().call));
    await advance(100);
    await b;
    const late = manualCall();
    void outcome(g2.run(late.call));
    await advance(299);
    expect(late.sent).toBe(0);
    await advance(1);
    expect(late.sent).toBe(1);
  });

  it('refuses a call that waited longer than maxQueueWaitMs without sending it', async () => {
    const g = gate({ timeoutMs: 500, maxQueueWaitMs: 200 });
    const slow = manualCall();
    const waiting = manualCall();
    void outcome(g.run(slow.call));
    const b = outcome(g.run(waiting.call));
    await advance(300);
    slow.resolve('late but in time');
    const refused = (await b as { error: unknown }).error;
    expect(refused).toBeInstanceOf(StoreQueueTimeoutError);
    expect(waiting.sent).toBe(0);
    expect(retirements).toBe(0);
  });
});
