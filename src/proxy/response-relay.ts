import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { CostSettlement } from '../core/cost-settlement.js';
import { BodyTooLargeError } from './body-limit.js';
import { BodyTooSlowError } from './body-pace.js';
import { ClientClosedError } from './client-gone.js';
import { isUpstreamTimeout } from './upstream-errors.js';
import type { ResponseCapture } from './response-capture.js';
import { buildClientResponseHeaders } from './response-headers.js';


/**
 * Why an exchange ended early, once the client's response had begun (or the
 * client had gone): `client_closed` (the client left), `upstream_failed`
 * (the upstream's connection broke or its response was malformed),
 * `upstream_timeout` (the body stalled beyond `body_timeout_ms`),
 * `payload_too_large` (the request body passed the limit after the upstream
 * had already answered), `request_timeout` (the request body stalled or
 * trickled after the upstream had already answered).
 */
export type AbortCause = 'client_closed' | 'upstream_failed' | 'upstream_timeout' | 'payload_too_large' | 'request_timeout';

/** How the relay ended; see {@link ResponseRelay}. */
export type RelayEnd =
  /** The whole response was handed to the client's connection. */
  | { readonly kind: 'completed'; readonly status: number }
  /** The response had begun (or the client had gone) and the exchange was cut short. */
  | { readonly kind: 'aborted'; readonly status: number; readonly cause: AbortCause }
  /** Nothing was written to the client: the caller may still answer with a problem. */
  | { readonly kind: 'failed'; readonly error: Error };

const INFORMATIONAL_LIMIT = 200;

/**
 * An undici dispatch handler that writes the upstream's response straight
 * into the client's `ServerResponse`: status and headers (hop-by-hop fields
 * dropped, the gateway's headers added) when they arrive, each body chunk as
 * it comes, pausing the upstream while the client's socket is full and
 * resuming on `drain`. No Readable, no pipe, no promise per chunk.
 *
 * It aborts the upstream request as soon as the client's connection closes,
 * and calls `onEnd` exactly once with how the exchange ended. After a
 * failure once the response has begun, the client's response is destroyed
 * (nothing else can be said on it).
 */
export class ResponseRelay implements Dispatcher.DispatchHandler {
  /** performance.now() when the response headers arrived (or the exchange gave up), in ms. */
  headersAtMs = 0;
  /**
   * The value of the settlement's field (a header once the response began,
   * a trailer once it ended), as undici parsed it; undefined when the route
   * settles nothing or the field has not arrived.
   */
  reported: string | string[] | undefined = undefined;
  #controller: Dispatcher.DispatchController | undefined = undefined;
  #status = 0;
  #ended = false;
  readonly #outgoing: ServerResponse;
  readonly #gatewayHeaders: ReadonlyArray<readonly [string, string]>;
  readonly #capture: ResponseCapture | undefined;
  readonly #onEnd: (end: RelayEnd) => void;
  readonly #settlement: CostSettlement | undefined;
  readonly #requestId: string | undefined;
  readonly #onClientClose = (): void => {
    if (this.#outgoing.writableFinished) return;
    this.#controller?.abort(new ClientClosedError());
    // Before dispatch started (no controller yet), onRequestStart sees the destroyed response.
  };
  readonly #onDrain = (): void => this.#controller?.resume();

  /**
   * @param capture keeps a copy of what is written, for an Idempotency-Key
   *   replay; absent for every other request.
   * @param settlement names the response field whose value to keep in
   *   `reported` (the route's `cost.from_response`); the field is relayed
   *   to the client like any other. Absent for a fixed cost.
   */
  constructor(
    outgoing: ServerResponse,
    gatewayHeaders: ReadonlyArray<readonly [string, string]>,
    capture: ResponseCapture | undefined,
    onEnd: (end: RelayEnd) => void,
    settlement?: CostSettlement,
    /** Written to the client as `x-request-id` after `gatewayHeaders`. */
    requestId?: string,
  ) {
    this.#outgoing = outgoing;
    this.#gatewayHeaders = gatewayHeaders;
    this.#capture = capture;
    this.#onEnd = onEnd;
    this.#settlement = settlement;
    this.#requestId = requestId;
    outgoing.once('close', this.#onClientClose);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#outgoing.destroyed) controller.abort(new ClientClosedError());
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < INFORMATIONAL_LIMIT) return;
    this.headersAtMs = performance.now();
    this.#status = statusCode;
    // Read before anything can abort: a header reported is kept even if the client has gone.
    if (this.#settlement?.from === 'header') this.reported = headers[this.#settlement.field];
    const outgoing = this.#outgoing;
    if (outgoing.destroyed) {
      controller.abort(new ClientClosedError());
      return;
    }
    try {
      const clientHeaders = buildClientResponseHeaders(headers, this.#gatewayHeaders, this.#requestId);
      this.#capture?.head(statusCode, clientHeaders);
      outgoing.writeHead(statusCode, clientHeaders);
    } catch (error) {
      // node refused a header the upstream sent: nothing is written yet, so it is still a 502.
      this.#status = 0;
      controller.abort(error instanceof Error ? error : new Error(String(error)));
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#capture?.chunk(chunk);
    if (!this.#outgoing.write(chunk)) {
      controller.pause();
      this.#outgoing.once('drain', this.#onDrain);
    }
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    if (this.#settlement?.from === 'trailer') this.reported = trailers[this.#settlement.field];
    this.#outgoing.end();
    this.#capture?.end();
    this.#finish({ kind: 'completed', status: this.#status });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.headersAtMs === 0) this.headersAtMs = performance.now();
    const outgoing = this.#outgoing;
    if (error instanceof ClientClosedError || (outgoing.destroyed && !outgoing.headersSent)) {
      this.#finish({ kind: 'aborted', status: this.#status, cause: 'client_closed' });
      return;
    }
    if (!outgoing.headersSent) {
      this.#finish({ kind: 'failed', error });
      return;
    }
    outgoing.destroy();
    this.#finish({ kind: 'aborted', status: this.#status, cause: abortCauseOf(error) });
  }

  #finish(end: RelayEnd): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#outgoing.removeListener('close', this.#onClientClose);
    this.#outgoing.removeListener('drain', this.#onDrain);
    this.#onEnd(end);
  }
}

/** What broke a response already under way, from the error it failed with. */
function abortCauseOf(error: Error): AbortCause {
  if (error instanceof BodyTooLargeError) return 'payload_too_large';
  if (error instanceof BodyTooSlowError) return 'request_timeout';
  return isUpstreamTimeout(error) ? 'upstream_timeout' : 'upstream_failed';
}
