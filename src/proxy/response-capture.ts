import type { StoredResponse } from '../core/idempotency.js';

/** Response fields that belong to one exchange, never to a replay of it. */
const PER_EXCHANGE_HEADERS: ReadonlySet<string> = new Set(['content-length', 'x-request-id']);

/**
 * Keeps a copy of the response the forwarder streams to the client, up to
 * `maxBodyBytes` of body, for an Idempotency-Key replay. The forwarder's
 * relay hands it the head and each chunk as it writes them to the client
 * (no extra copy on the way, no change to backpressure); it lets go of the
 * body once it outgrows the cap.
 */
export class ResponseCapture {
  #status = 0;
  #headers: Array<readonly [string, string]> = [];
  #chunks: Buffer[] = [];
  #bodyBytes = 0;
  #overflowed = false;
  #ended = false;

  /**
   * @param onServerError called when the head is a 5xx, before it is written
   *   to the client: nothing will be kept, so the key can be released before
   *   the client can retry.
   */
  constructor(
    readonly maxBodyBytes: number,
    private readonly onServerError?: () => void,
  ) {}

  /**
   * Called by the forwarder just before it writes the head: the status and
   * the header list (`[name, value, …]`).
   */
  head(status: number, flatHeaders: readonly string[]): void {
    this.#status = status;
    if (status >= 500) this.onServerError?.();
    for (let i = 0; i + 1 < flatHeaders.length; i += 2) {
      const name = flatHeaders[i]!.toLowerCase();
      if (!PER_EXCHANGE_HEADERS.has(name)) this.#headers.push([name, flatHeaders[i + 1]!]);
    }
  }

  /** Called with each body chunk as it is written to the client; lets go of the body once it passes the cap. */
  chunk(chunk: Buffer): void {
    if (this.#overflowed) return;
    this.#bodyBytes += chunk.length;
    if (this.#bodyBytes > this.maxBodyBytes) {
      this.#overflowed = true;
      this.#chunks = [];
      return;
    }
    this.#chunks.push(chunk);
  }

  /** Called once the whole body was written. */
  end(): void {
    this.#ended = true;
  }

  get status(): number {
    return this.#status;
  }

  /** Whether the body outgrew `maxBodyBytes`. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  /**
   * The response as kept for replay, or undefined when there is none to keep:
   * no head arrived, the upstream's body did not end (it broke off, or the
   * client left first), or it outgrew the cap.
   */
  response(): StoredResponse | undefined {
    if (this.#status === 0 || !this.#ended || this.#overflowed) return undefined;
    return { status: this.#status, headers: this.#headers, body: Buffer.concat(this.#chunks, this.#bodyBytes) };
  }
}
