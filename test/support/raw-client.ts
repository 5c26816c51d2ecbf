import { connect, type Socket } from 'node:net';
import { within } from './within.js';

/**
 * A client connection driven byte by byte (node:net), for what an HTTP
 * client library will not do: stay silent, trickle headers or a body,
 * pipeline requests. It records everything the server sends.
 */
export interface RawClient {
  readonly socket: Socket;
  /** Everything received so far, as latin1 text. */
  received(): string;
  /** Writes `text` (latin1); resolves once it is handed to the kernel. */
  send(text: string): Promise<void>;
  /** Resolves once the server closed the connection (or it broke), with everything received. */
  readonly closed: Promise<string>;
  /** Resolves once `predicate(received())` holds, within `timeoutMs`. */
  waitFor(predicate: (received: string) => boolean, timeoutMs: number, what: string): Promise<string>;
  /** Sends `text` one byte at a time, `intervalMs` apart, until done or the connection closes. */
  trickle(text: string, intervalMs: number): Promise<void>;
  destroy(): void;
}

/** Opens a raw TCP connection to `url`'s host and port; resolves once connected. */
export async function openRawClient(url: string): Promise<RawClient> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let data = '';
  const listeners = new Set<() => void>();
  socket.on('data', (chunk: Buffer) => {
    data += chunk.toString('latin1');
    for (const listener of listeners) listener();
  });
  const closed = new Promise<string>((resolve) => {
    socket.on('error', () => {});
    socket.on('close', () => {
      for (const listener of listeners) listener();
      resolve(data);
    });
  });
  await within(
    new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }),
    5_000,
    'a raw connection',
  );
  const client: RawClient = {
    socket,
    received: () => data,
    send: (text) =>
      new Promise((resolve, reject) => {
        socket.write(Buffer.from(text, 'latin1'), (error) => (error ? reject(error) : resolve()));
      }),
    closed,
    waitFor: (predicate, timeoutMs, what) =>
      within(
        new Promise<string>((resolve, reject) => {
          const check = (): void => {
            if (predicate(data)) {
              listeners.delete(check);
              resolve(data);
            } else if (socket.destroyed) {
              listeners.delete(check);
              reject(new Error(`connection closed before ${what}; received: ${JSON.stringify(data)}`));
            }
          };
          listeners.add(check);
          check();
        }),
        timeoutMs,
        what,
      ),
    async trickle(text, intervalMs) {
      for (const byte of text) {
        if (socket.destroyed || socket.writableEnded) return;
        socket.write(byte);
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
    },
    destroy: () => socket.destroy(),
  };
  return client;
}

/** The status lines of the HTTP/1.x responses in `raw`, in order (bodies must not contain one). */
export function statusLines(raw: string): string[] {
  return [...raw.matchAll(/HTTP\/1\.[01] \d{3} [^\r]*/g)].map((match) => match[0]);
}
