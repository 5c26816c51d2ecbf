import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type CircuitState } from '../../src/limiter/circuit-breaker.js';
import { ManualClock } from '../support/manual-clock.js';

function breaker(clock = new ManualClock(0)) {
  const changes: CircuitState[] = [];
  const b = new CircuitBreaker({ failureThreshold: 3, openMs: 1000, clock, onStateChange: (s) => changes.push(s) });
  return { b, clock, changes };
}

describe('CircuitBreaker', () => {
  it('opens after the threshold of consecutive failures, not before', () => {
    const { b, changes } = breaker();
    b.recordFailure();
    b.recordFailure();
    expect(b.allowCall()).toBe(true);
    b.recordFailure();
    expect(b.state).toBe('open');
    expect(b.allowCall()).toBe(false);
    expect(changes).toEqual(['open']);
  });

  it('counts only consecutive failures', () => {
    const { b } = breaker();
    b.recordFailure();
    b.recordFailure();
    b.recordSuccess();
    b.recordFailure();
    b.recordFailure();
    expect(b.state).toBe('closed');
  });

  it('lets exactly one probe through after openMs, and closes on its success', () => {
    const { b, clock, changes } = breaker();
    for (let i = 0; i < 3; i++) b.recordFailure();
    clock.advance(999);
    expect(b.allowCall()).toBe(false);
    clock.advance(1);
    expect(b.allowCall()).toBe(true);
    expect(b.state).toBe('half-open');
    expect(b.allowCall()).toBe(false);
    b.recordSuccess();
    expect(b.state).toBe('closed');
    expect(b.allowCall()).toBe(true);
    expect(changes).toEqual(['open', 'half-open', 'closed']);
  });

  it('reopens for another openMs when the probe fails', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 3; i++) b.recordFailure();
    clock.advance(1000);
    expect(b.allowCall()).toBe(true);
    b.recordFailure();
    expect(b.state).toBe('open');
    clock.advance(999);
    expect(b.allowCall()).toBe(false);
    clock.advance(1);
    expect(b.allowCall()).toBe(true);
  });
});
