import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { CostSettlement } from '../core/cost-settlement.js';
import { GatewayError } from '../core/errors.js';
import type { Identity } from '../core/identity.js';
import { assertBodyWithinLimit, BodyLimitStream, hasRequestBody } from './body-limit.js';
import type { BodyPaceLimits } from './body-pace.js';
import { ClientGoneSignal } from './client-gone.js';
import type { ClientAddressResolver } from './client-address.js';
import { buildUpstreamRequestHeaders } from './request-headers.js';
import type { ResponseCapture } from './response-capture.js';
import { type AbortCause, ResponseRelay } from './response-relay.js';
import { toGatewayError } from './upstream-errors.js';
import type { UpstreamPool, UpstreamPools } from './upstream-pools.js';

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
  /**
   * Sent upstream as `x-request-id` in place of the client's, and to the
   * client after `responseHeaders` (replacing the upstream's); absent: the
   * client's (if any) is passed on, and the upstream's returned.
   */
  readonly requestId?: string | undefined;
  /** The route's cost is settled from the response: the outcome's `reported` holds the field it names. */
  readonly settlement?: CostSettlement | undefined;
}

export type { AbortCause } from './response-relay.js';

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
  /**
   * With a `settlement`: the value of the field it names, as undici parsed
   * it (a header once the response began, a trailer once it ended whole);
   * undefined when none arrived.
   */
  readonly reported?: string | string[] | undefined;
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

  /**
   * Not async: the common exchange (a connection free at once) makes one
   * promise, the one the relay settles; a wait for a connection slot takes
   * the async path. Whatever fails before dispatch rejects, never throws.
   */
  forward(request: ForwardRequest): Promise<ForwardOutcome> {
    let prepared: PreparedForward | undefined;
    try {
      prepared = this.#prepare(request);
    } catch (error) {
      return Promise.reject(error);
    }
    if (prepared === undefined) return Promise.resolve(aborted(0, 0, 'client_closed'));
    if (!prepared.upstream.pool.slots.tryAcquire()) return this.#forwardAfterWait(request, prepared);
    return dispatchToUpstream(request, prepared);
  }

  /** Checks the target and the declared body size, and builds the upstream request's headers and body; undefined when the client is gone already. */
  #prepare(request: ForwardRequest): PreparedForward | undefined {
    const { incoming, outgoing } = request;
    const upstream = this.#pools.get(request.upstream);
    if (request.path.charCodeAt(0) !== SLASH) {
      throw new GatewayError('bad_request', 'The request target must be a path starting with "/".');
    }
    const headers = incoming.headers;
    assertBodyWithinLimit(headers, request.maxBodyBytes);
    if (outgoing.destroyed) return undefined;

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
    return { upstream, upstreamHeaders, body };
  }

  /** Every connection is busy: waits (bounded by queue_timeout_ms) unless the client leaves first, then dispatches. */
  async #forwardAfterWait(request: ForwardRequest, prepared: PreparedForward): Promise<ForwardOutcome> {
    const { incoming, outgoing } = request;
    const clientGone = new ClientGoneSignal(outgoing);
    try {
      await prepared.upstream.pool.slots.wait(clientGone);
    } catch (error) {
      if (outgoing.destroyed) return aborted(0, 0, 'client_closed');
      throw toGatewayError(error, releaseRequestBody(incoming, prepared.body));
    } finally {
      clientGone.release();
    }
    return dispatchToUpstream(request, prepared);
  }

  /** Graceful: lets dispatched requests finish, then closes every upstream connection. */
  close(): Promise<void> {
    return this.#pools.close();
  }

  /** Abrupt: fails in-flight requests and drops every upstream connection now. */
  destroy(): Promise<void> {
    return this.#pools.destroy();
  }
}

/** What {@link Forwarder} prepared for one request before dispatching it. */
interface PreparedForward {
  readonly upstream: UpstreamPool;
  readonly upstreamHeaders: string[];
  readonly body: BodyLimitStream | null;
}

/**
 * Dispatches a prepared request on a connection slot already taken (the
 * relay gives it back at the end) and settles with how the exchange ended:
 * a failure before anything was written rejects with a GatewayError.
 */
function dispatchToUpstream(request: ForwardRequest, prepared: PreparedForward): Promise<ForwardOutcome> {
  const { incoming } = request;
  const { upstream, body } = prepared;
  const pool = upstream.pool;
  const startedAt = performance.now();
  return new Promise<ForwardOutcome>((resolve, reject) => {
    const relay = new ResponseRelay(
      request.outgoing,
      request.responseHeaders,
      request.capture,
      (end) => {
        pool.slots.release();
        const upstreamMs = relay.headersAtMs - startedAt;
        switch (end.kind) {
          case 'failed':
            reject(toGatewayError(end.error, releaseRequestBody(incoming, body)));
            return;
          case 'aborted':
            resolve(aborted(end.status, upstreamMs, end.cause, relay.reported));
            return;
          case 'completed':
            // The upstream may answer without reading the whole request body; drop the rest.
            releaseRequestBody(incoming, body);
            resolve({ status: end.status, upstreamMs, aborted: false, reported: relay.reported });
        }
      },
      request.settlement,
      request.requestId,
    );
    pool.dispatch(
      {
        method: request.method as Dispatcher.HttpMethod,
        path: request.path,
        headers: prepared.upstreamHeaders,
        body: request.body ?? body,
        headersTimeout: upstream.headersTimeoutMs,
        bodyTimeout: upstream.bodyTimeoutMs,
      },
      relay,
    );
  });
}

function aborted(status: number, upstreamMs: number, abortCause: AbortCause, reported?: string | string[]): ForwardOutcome {
  return { status, upstreamMs, aborted: true, abortCause, reported };
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
