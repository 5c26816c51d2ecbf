import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';

/** {@link streamResponseBody}'s answer when the client's connection closed first. */
export const CLIENT_CLOSED = Symbol('client closed');

/**
 * Streams an upstream response body into the client's response (with
 * backpressure) and resolves with how that ended, never rejecting:
 * - `undefined`: the whole body was handed to the client's connection;
 * - {@link CLIENT_CLOSED}: the client's connection closed first; the body is
 *   destroyed, which makes undici abort the upstream request;
 * - an error: the body failed (upstream reset, body timeout, …); the client's
 *   response is destroyed, since a problem can no longer be sent.
 *
 * `stream.pipeline` does the same with an AbortController, a DOMException
 * and end-of-stream bookkeeping on both sides for every response; this is the
 * hot path, so it is done with `pipe` and three listeners.
 */
export function streamResponseBody(body: Readable, outgoing: ServerResponse): Promise<undefined | typeof CLIENT_CLOSED | Error> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (end: undefined | typeof CLIENT_CLOSED | Error): void => {
      if (settled) return;
      settled = true;
      outgoing.removeListener('finish', onFinish);
      outgoing.removeListener('close', onClose);
      resolve(end);
    };
    const onFinish = (): void => settle(undefined);
    const onClose = (): void => {
      body.destroy();
      settle(CLIENT_CLOSED);
    };
    // Stays attached: it also takes the error undici raises when the body is destroyed above.
    body.on('error', (error: Error) => {
      outgoing.destroy();
      settle(error);
    });
    if (outgoing.destroyed) {
      onClose();
      return;
    }
    outgoing.once('finish', onFinish);
    outgoing.once('close', onClose);
    body.pipe(outgoing);
  });
}
