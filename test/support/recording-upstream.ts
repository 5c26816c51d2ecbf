import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the upstream saw it. Fields fill in as the request arrives. */
export interface RecordedRequest {
  readonly method: string;
  /** Request target exactly as received: path and query. */
  readonly url: string;
  /** Parsed headers (lowercase names). */
  readonly headers: IncomingHttpHeaders;
  /** Headers as sent: `[name, value, …]`, original case, every repetition. */
  readonly rawHeaders: readonly string[];
  /** Body bytes received so far (concatenated on each read of this property). */
  readonly body: Buffer;
  /** Number of body bytes received so far. */
  readonly bodyBytes: number;
  /** Whether the whole body arrived (false while streaming, or when the connection was cut). */
  complete: boolean;
  /** Whether the connection closed before the upstream's response finished. */
  closedEarly: boolean;
}

/** How the upstream answers a request, once it has read the request's body. */
export interface UpstreamReply {
  /** Default 200. */
  readonly status?: number;
  /** `[name, value]` pairs, written in order; repeat a name to send it twice. */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  /** Whole body, written at once. Ignored when `chunks` is given. */
  readonly body?: string | Buffer;
  /** Body written chunk by chunk (chunked encoding unless a content-length header is given). */
  readonly chunks?: ReadonlyArray<string | Buffer>;
  /** Pause before each chunk after the first, in ms. */
  readonly chunkDelayMs?: number;
  /** Pause before the status line and headers, in ms. */
  readonly delayHeadersMs?: number;
}

/**
 * Takes over an exchange: called as soon as the request's headers arrive,
 * while the body is still being recorded. For replies the declarative form
 * cannot express (answering early, breaking the connection, …).
 */
export type UpstreamHandler = (request: IncomingMessage, response: ServerResponse, record: RecordedRequest) => void;

export interface RecordingUpstreamOptions {
  /** A fixed reply, or one computed from the recorded request. Default: 200 with body `ok`. */
  readonly reply?: UpstreamReply | ((record: RecordedRequest) => UpstreamReply);
  readonly handler?: UpstreamHandler;
}

export interface RecordingUpstream {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  readonly port: number;
  /** Every request received, in arrival order. */
  readonly requests: RecordedRequest[];
  /** Replaces the reply or handler for the requests that follow. */
  configure(options: RecordingUpstreamOptions): void;
  /** Cuts every connection and stops listening. */
  close(): Promise<void>;
}

/** A node:http server on 127.0.0.1 (ephemeral port) that records requests and replies as told. */
export async function startRecordingUpstream(options: RecordingUpstreamOptions = {}): Promise<RecordingUpstream> {
  let current = options;
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    let bodyBytes = 0;
    const record: RecordedRequest = {
      method: request.method ?? '',
      url: request.url ?? '',
      headers: request.headers,
      rawHeaders: request.rawHeaders,
      get body() {
        return Buffer.concat(chunks);
      },
      get bodyBytes() {
        return bodyBytes;
      },
      complete: false,
      closedEarly: false,
    };
    requests.push(record);
    request.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      bodyBytes += chunk.length;
    });
    request.on('error', () => {});
    response.on('close', () => {
      if (!response.writableFinished) record.closedEarly = true;
    });
    const { handler, reply } = current;
    if (handler !== undefined) {
      request.on('end', () => {
        record.complete = request.complete;
      });
      handler(request, response, record);
      return;
    }
    request.on('end', () => {
      record.complete = request.complete;
      const chosen = typeof reply === 'function' ? reply(record) : (reply ?? { body: 'ok' });
      void writeReply(response, chosen, later).catch(() => response.destroy());
    });
  });
  server.on('clientError', (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/`,
    origin,
    port,
    requests,
    configure(next) {
      current = next;
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function writeReply(
  response: ServerResponse,
  reply: UpstreamReply,
  later: (ms: number) => Promise<void>,
): Promise<void> {
  if (reply.delayHeadersMs !== undefined) await later(reply.delayHeadersMs);
  if (response.destroyed) return;
  const headers: string[] = [];
  for (const [name, value] of reply.headers ?? []) headers.push(name, value);
  response.writeHead(reply.status ?? 200, headers);
  if (reply.chunks === undefined) {
    response.end(reply.body);
    return;
  }
  for (const [index, chunk] of reply.chunks.entries()) {
    if (index > 0 && reply.chunkDelayMs !== undefined) await later(reply.chunkDelayMs);
    if (response.destroyed) return;
    if (!response.write(chunk)) {
      await new Promise((resolve) => {
        response.once('drain', resolve);
        response.once('close', resolve);
      });
    }
  }
  response.end();
}
