import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';

/** The abort reason once the client has gone away before its response was finished. */
export class ClientClosedError extends Error {
  constructor() {
    super('the client closed the connection');
    this.name = 'ClientClosedError';
  }
}

/**
 * An abort signal for one undici request that fires when the client's
 * connection closes before its response is finished, so the upstream request
 * does not outlive the client.
 *
 * undici takes an EventEmitter that emits `abort` (and reads `aborted` and
 * `reason` like an AbortSignal's) as well as an AbortSignal; this form costs
 * a small fraction of an AbortController on the hot path (no EventTarget, no
 * DOMException). Call {@link release} once the signal is no longer needed.
 */
export class ClientGoneSignal extends EventEmitter {
  aborted = false;
  reason: ClientClosedError | undefined = undefined;
  readonly #outgoing: ServerResponse;
  readonly #onClose: () => void;

  constructor(outgoing: ServerResponse) {
    super();
    this.#outgoing = outgoing;
    this.#onClose = () => {
      if (outgoing.writableFinished) return;
      this.aborted = true;
      this.reason = new ClientClosedError();
      this.emit('abort');
    };
    outgoing.once('close', this.#onClose);
  }

  /** Stops watching the client's connection. */
  release(): void {
    this.#outgoing.removeListener('close', this.#onClose);
  }
}
