import type { Clock } from '../core/clock.js';

/** `closed`: calls go through. `open`: calls are refused. `half-open`: one probe is in flight. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** The circuit-state gauge's value of each state. */
export const CIRCUIT_STATE_VALUE: Readonly<Record<CircuitState, number>> = { closed: 0, 'half-open': 1, open: 2 };

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. */
  readonly failureThreshold: number;
  /** How long the circuit stays open before one probe is let through, in ms. */
  readonly openMs: number;
  readonly clock: Clock;
  /** Called on every state change, for the circuit-state metric and logs. */
  readonly onStateChange?: (state: CircuitState) => void;
}

/**
 * Stops calling a store that keeps failing, and finds out by itself when it
 * is back: after `failureThreshold` consecutive failures the circuit opens
 * and `allowCall()` answers false for `openMs`; then exactly one call is let
 * through as a probe: its success closes the circuit, its failure opens it
 * for another `openMs`.
 */
export class CircuitBreaker {
  private currentState: CircuitState = 'closed';
  private consecutiveFailures = 0;
  private openedAtMs = 0;

  constructor(private readonly options: CircuitBreakerOptions) {}

  get state(): CircuitState {
    return this.currentState;
  }

  /** Whether a call may be made now. In `open` past `openMs`, the first caller becomes the probe. */
  allowCall(): boolean {
    if (this.currentState === 'closed') return true;
    if (this.currentState === 'half-open') return false;
    if (this.options.clock.now() - this.openedAtMs < this.options.openMs) return false;
    this.transition('half-open');
    return true;
  }

  recordSuccess(): void {
    this.consecutiveFailures = 0;
    if (this.currentState !== 'closed') this.transition('closed');
  }

  /**
   * The probe ended without saying anything about the store (the gateway's
   * own queue, say): back to open as it was, so that the next call probes.
   */
  abandonProbe(): void {
    if (this.currentState === 'half-open') this.transition('open');
  }

  recordFailure(): void {
    this.consecutiveFailures += 1;
    if (this.currentState === 'half-open' || this.consecutiveFailures >= this.options.failureThreshold) {
      this.openedAtMs = this.options.clock.now();
      if (this.currentState !== 'open') this.transition('open');
    }
  }

  private transition(state: CircuitState): void {
    this.currentState = state;
    this.options.onStateChange?.(state);
  }
}
