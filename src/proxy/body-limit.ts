import { Transform, type TransformCallback } from 'node:stream';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { GatewayError } from '../core/errors.js';
import { BodyPace, type BodyPaceLimits } from './body-pace.js';

/**
 * Header of the 413 answer. The unread rest of the body makes the connection
 * useless for another request, and reading it just to discard it would let
 * a client keep the gateway busy; so the connection closes after the answer.
 */
export const CLOSE_CONNECTION: ReadonlyArray<readonly [string, string]> = Object.freeze([
  Object.freeze(['connection', 'close'] as const),
]);

/**
 * Rejects a request whose declared `Content-Length` exceeds `maxBodyBytes`,
 * before anything is charged or sent upstream. A chunked body has no length
 * up front; {@link BodyLimitStream} enforces the limit on it as it streams.
 *
 * @throws GatewayError `payload_too_large` (413), with `Connection: close`.
 */
export function assertBodyWithinLimit(headers: IncomingHttpHeaders, maxBodyBytes: number): void {
  const declared = headers['content-length'];
  if (declared === undefined) return;
  // node:http has already rejected malformed and conflicting values.
  const bytes = Number(declared);
  if (bytes > maxBodyBytes) throw payloadTooLarge(maxBodyBytes);
}

/**
 * Whether the request carries a body (RFC 9112 §6.3): a `Transfer-Encoding`,
 * or a `Content-Length` other than 0, whatever the method.
 */
export function hasRequestBody(headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const declared = headers['content-length'];
  return declared !== undefined && declared !== '0' && Number(declared) > 0;
}

/** The error a {@link BodyLimitStream} fails with once the body outgrows its limit. */
export class BodyTooLargeError extends Error {
  constructor(readonly maxBodyBytes: number) {
    super(`request body exceeds ${maxBodyBytes} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/**
 * Passes bytes through unchanged and fails with {@link BodyTooLargeError} as
 * soon as more than `maxBodyBytes` have passed: the upstream never receives
 * more than the limit. It also stands between the client's request and
 * undici, which destroys a request body it gives up on; destroying this
 * stream leaves the client's connection usable for the error answer.
 */
export class BodyLimitStream extends Transform {
  #passedBytes = 0;
  readonly #pace: BodyPace | undefined;

  /**
   * @param pace when given, the stream also fails with BodyTooSlowError
   *   once the body stalls or trickles (see {@link BodyPace}); watching
   *   starts now and stops when the body ends, fails or is unpiped.
   */
  constructor(
    readonly maxBodyBytes: number,
    pace?: BodyPaceLimits,
  ) {
    super();
    if (pace === undefined) return;
    const watch = new BodyPace(
      pace,
      (error) => this.destroy(error),
      () => this.readableLength >= this.readableHighWaterMark,
    );
    this.#pace = watch;
    this.once('unpipe', () => watch.stop());
  }

  /** Bytes passed through so far. */
  get passedBytes(): number {
    return this.#passedBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#passedBytes += chunk.length;
    this.#pace?.received(chunk.length);
    if (this.#passedBytes > this.maxBodyBytes) {
      callback(new BodyTooLargeError(this.maxBodyBytes));
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#pace?.stop();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#pace?.stop();
    callback(error);
  }
}

/** The 413 answer for a body over `maxBodyBytes`. */
export function payloadTooLarge(maxBodyBytes: number): GatewayError {
  return new GatewayError(
    'payload_too_large',
    `The request body exceeds the limit of ${maxBodyBytes} bytes.`,
    { max_body_bytes: maxBodyBytes },
    CLOSE_CONNECTION,
  );
}

/**
 * Reads the whole request body into memory, refusing more than
 * `maxBodyBytes` (a declared `Content-Length` over it is refused before a
 * byte is read). For bodies that must be known before the request is
 * decided (an Idempotency-Key's fingerprint); everything else streams.
 * With `pace`, the body is held to it as a streamed one is (see
 * {@link BodyPace}; the gateway reads as fast as the client sends, so there
 * is no backpressure to discount).
 *
 * @throws GatewayError `payload_too_large` (413, `Connection: close`: the
 *   rest is left unread), or `bad_request` when the client cut the body off;
 *   BodyTooSlowError when it stalled or trickled (the rest is left unread).
 */
export function readWholeBody(incoming: IncomingMessage, maxBodyBytes: number, pace?: BodyPaceLimits): Promise<Buffer> {
  const { headers } = incoming;
  if (!hasRequestBody(headers)) return Promise.resolve(Buffer.alloc(0));
  assertBodyWithinLimit(headers, maxBodyBytes);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const watch =
      pace === undefined
        ? undefined
        : new BodyPace(
            pace,
            (error) => {
              cleanUp();
              incoming.pause();
              reject(error);
            },
            () => false,
          );
    const cleanUp = (): void => {
      watch?.stop();
      incoming.removeListener('data', onData);
      incoming.removeListener('end', onEnd);
      incoming.removeListener('close', onClose);
      incoming.removeListener('error', onClose);
    };
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      watch?.received(chunk.length);
      if (bytes > maxBodyBytes) {
        cleanUp();
        incoming.pause();
        reject(payloadTooLarge(maxBodyBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanUp();
      resolve(Buffer.concat(chunks, bytes));
    };
    const onClose = (): void => {
      cleanUp();
      reject(new GatewayError('bad_request', 'The request body was cut off before its end.'));
    };
    incoming.on('data', onData);
    incoming.once('end', onEnd);
    incoming.once('close', onClose);
    incoming.once('error', onClose);
  });
}
