import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../core/errors.js';
import type { Identity } from '../core/identity.js';
import { assertBodyWithinLimit, BodyLimitStream, BodyTooLargeError, hasRequestBody } from './body-limit.js';
import { type BodyPaceLimits, BodyTooSlowError } from './body-pace.js';
import type { ClientAddressResolver } from './client-address.js';
import { ClientClosedError, ClientGoneSignal } from './client-gone.js';
import { buildUpstreamRequestHeaders } from './request-headers.js';
import type { ResponseCapture } from './response-capture.js';
import { buildClientResponseHeaders } from './response-headers.js';
import { CLIENT_CLOSED, streamResponseBody } from './response-stream.js';
import { isUpstreamTimeout, toGatewayError } from './upstream-errors.js';
import type { UpstreamPools } from './upstream-pools.js';

export { assertBodyWithinLimit } from './body-limit.js';

/** One admitted request to pass to an upstream. */
export interface ForwardRequest {
  /** Name of the upstream under `upstreams:`. */
  readonly upstream: string;
  /** The client's request. Its body must not have been read (unless given as `body`): it is streamed upstream from here. */
  readonly incoming: IncomingMessage;
  /** The whole request body, already read from `incoming` (a request with an Idempotency-Key); sent as it is. */
  readonly body?: Buffer | undefined;
  /** Keeps a copy of the response for an Idempotency-Key replay. */
  readonly capture?: ResponseCapture | undefined;
  /** The client's response. Nothing must have been written to it yet. */
  readonly outgoing: ServerResponse;
  /** The request method as received (uppercase token). */
  readonly method: string;
  /** Path and query exactly as received; must start with `/`. */
  readonly path: string;
  /** Who is calling, for the `x-quotagate-*` headers; absent when unknown. */
  readonly identity?: Identity;
  /** Headers the gateway adds to the upstream's response (the rate-limit headers); lowercase names. */
  readonly responseHeaders: ReadonlyArray<readonly [string, string]>;
  /** Largest request body to forward, in bytes. */
  readonly maxBodyBytes: number;
  /** Lowercase names of the request fields that carried the caller's credential; not forwarded. */
  readonly credentialHeaders: readonly string[];
  /** Sent upstream as `x-request-id` in place of the client's; absent: the client's (if any) is passed on. */
  readonly requestId?: string | undefined;
}

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

/** How a forwarded exchange ended. Failures before the response began are thrown instead. */
export interface ForwardOutcome {
  /** The upstream's status code; 0 when none arrived (the client left first). */
  readonly status: number;
  /** Milliseconds from dispatching the request to the upstream's response headers (or to giving up). */
  readonly upstreamMs: number;
  /** Whether the exchange was cut short: the client's connection has been closed. */
  readonly aborted: boolean;
  /** Why it was cut short; present exactly when `aborted`. */
  readonly abortCause?: AbortCause;
}

export interface ForwarderOptions {
  /** The upstreams' pools; the forwarder owns them from here and closes them in {@link Forwarder.close}. */
  readonly pools: UpstreamPools;
  /** Decides X-Forwarded-* from `proxy.trusted_proxies`; share it with whatever counts `auth: none` clients. */
  readonly clientAddress: ClientAddressResolver;
  /** How fast a request body must arrive; a body that stalls or trickles fails with 408. Absent: not watched. */
  readonly requestBodyPace?: BodyPaceLimits;
}

const SLASH = 0x2f;
/** Stands in for the peer when node no longer knows it (the socket is already gone). */
const UNKNOWN_PEER = 'unknown';

function ignoreError(): void {}

/**
 * Streams one admitted request to its upstream and the answer back, with
 * undici's dispatcher API on a keep-alive pool per upstream.
 *
 * Contract of {@link Forwarder.forward}:
 * - it throws a GatewayError when the exchange fails before anything was
 *   written to `outgoing` (400 for a target that is not a path, 408 for a
 *   request body too slow, 413, 502, 503 `upstream_busy` when no upstream
 *   connection came free within `queue_timeout_ms`, 504): `outgoing` is
 *   untouched and the caller answers with a problem, adding the error's
 *   `headers` (`Connection: close` when the request body
 *   was left unread). Programming faults are rethrown as they are;
 * - otherwise it resolves once `outgoing` is finished or destroyed; when the
 *   exchange broke after the response began, the client's connection is
 *   destroyed (no problem can be sent any more) and the outcome says why;
 * - the upstream request is aborted whenever the client goes away.
 * It logs nothing: this is the hot path, and the outcome carries what the
 * caller needs for logs and metrics.
 */
export class Forwarder {
  readonly #pools: UpstreamPools;
  readonly #clientAddress: ClientAddressResolver;
  readonly #requestBodyPace: BodyPaceLimits | undefined;

  constructor(options: ForwarderOptions) {
    this.#pools = options.pools;
    this.#clientAddress = options.clientAddress;
    this.#requestBodyPace = options.requestBodyPace;
  }

  async forward(request: ForwardRequest): Promise<ForwardOutcome> {
    const { incoming, outgoing } = request;
    const upstream = this.#pools.get(request.upstream);
    if (request.path.charCodeAt(0) !== SLASH) {
      throw new GatewayError('bad_request', 'The request target must be a path starting with "/".');
    }
    const headers = incoming.headers;
    assertBodyWithinLimit(headers, request.maxBodyBytes);
    if (outgoing.destroyed) return aborted(0, 0, 'client_closed');

    const client = this.#clientAddress.resolve(incoming.socket.remoteAddress ?? UNKNOWN_PEER, headers['x-forwarded-for']);
    const upstreamHeaders = buildUpstreamRequestHeaders(headers, {
      credentialHeaders: request.credentialHeaders,
      identity: request.identity,
      client,
      protocol: isEncrypted(incoming) ? 'https' : 'http',
      requestId: request.requestId,
    });
    let body: BodyLimitStream | null = null;
    if (request.body === undefined && hasRequestBody(headers)) {
      body = new BodyLimitStream(request.maxBodyBytes, this.#requestBodyPace);
      // undici listens for errors only while it owns the body; this keeps a late one from crashing the process.
      body.on('error', ignoreError);
      incoming.pipe(body);
    }

    const clientGone = new ClientGoneSignal(outgoing);
    const startedAt = performance.now();
    let response: Dispatcher.ResponseData;
    try {
      response = await upstream.pool.request({
        method: request.method as Dispatcher.HttpMethod,
        path: request.path,
        headers: upstreamHeaders,
        body: request.body ?? body,
        headersTimeout: upstream.headersTimeoutMs,
        bodyTimeout: upstream.bodyTimeoutMs,
        signal: clientGone,
      });
    } catch (error) {
      const upstreamMs = performance.now() - startedAt;
      if (outgoing.destroyed) return aborted(0, upstreamMs, 'client_closed');
      throw toGatewayError(error, releaseRequestBody(incoming, body));
    } finally {
      // From here on, a closing client connection is noticed by streamResponseBody.
      clientGone.release();
    }
    return this.#respond(request, response, performance.now() - startedAt, body);
  }

  /** Graceful: lets dispatched requests finish, then closes every upstream connection. */
  close(): Promise<void> {
    return this.#pools.close();
  }

  /** Abrupt: fails in-flight requests and drops every upstream connection now. */
  destroy(): Promise<void> {
    return this.#pools.destroy();
  }

  /** Writes the upstream's status and headers (plus the gateway's) and streams its body to the client. */
  async #respond(
    request: ForwardRequest,
    response: Dispatcher.ResponseData,
    upstreamMs: number,
    body: BodyLimitStream | null,
  ): Promise<ForwardOutcome> {
    const { incoming, outgoing } = request;
    const status = response.statusCode;
    if (outgoing.destroyed) {
      discardResponseBody(response.body);
      return aborted(status, upstreamMs, 'client_closed');
    }
    let clientHeaders: string[];
    try {
      clientHeaders = buildClientResponseHeaders(response.headers, request.responseHeaders);
      outgoing.writeHead(status, clientHeaders);
    } catch (error) {
      // node refused a header the upstream sent: nothing is written yet, so it is still a 502.
      discardResponseBody(response.body);
      throw toGatewayError(error, releaseRequestBody(incoming, body));
    }
    const streaming = streamResponseBody(response.body, outgoing);
    request.capture?.observe(status, clientHeaders, response.body);
    const end = await streaming;
    if (end !== undefined) return aborted(status, upstreamMs, end === CLIENT_CLOSED ? 'client_closed' : abortCauseOf(end));
    // The upstream may answer without reading the whole request body; drop the rest.
    releaseRequestBody(incoming, body);
    return { status, upstreamMs, aborted: false };
  }
}

/** Aborts the upstream response; undici then fails the body, which nobody reads any more. */
function discardResponseBody(body: Readable): void {
  body.on('error', ignoreError);
  body.destroy();
}

function aborted(status: number, upstreamMs: number, abortCause: AbortCause): ForwardOutcome {
  return { status, upstreamMs, aborted: true, abortCause };
}

/** What broke a response already under way, from the error its body failed with. */
function abortCauseOf(error: Error): AbortCause {
  if (error instanceof ClientClosedError) return 'client_closed';
  if (error instanceof BodyTooLargeError) return 'payload_too_large';
  if (error instanceof BodyTooSlowError) return 'request_timeout';
  return isUpstreamTimeout(error) ? 'upstream_timeout' : 'upstream_failed';
}

/**
 * Detaches the request body from the upstream and discards whatever of it is
 * still to come, so node:http can read the connection's next request.
 * @returns whether the body had not been received in full (the connection
 *   should then close after the answer).
 */
function releaseRequestBody(incoming: IncomingMessage, body: BodyLimitStream | null): boolean {
  if (body === null) return false;
  incoming.unpipe(body);
  incoming.resume();
  return !incoming.complete;
}

function isEncrypted(incoming: IncomingMessage): boolean {
  return (incoming.socket as { encrypted?: unknown } | null)?.encrypted === true;
}
