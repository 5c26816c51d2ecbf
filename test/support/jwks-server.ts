import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';

/**
 * How the JWKS server misbehaves: `none` serves the key set; `error` answers
 * 503; `reset` destroys each connection unanswered; `hang` accepts and never
 * answers (until the server closes).
 */
export type JwksOutage = 'none' | 'error' | 'reset' | 'hang';

export interface JwksServer {
  /** `http://127.0.0.1:<port>/.well-known/jwks.json` */
  readonly url: string;
  /** Requests received on any path, in every outage mode. */
  readonly hits: number;
  /** Replaces the published keys (public JWKs, with `kid`). */
  publish(keys: ReadonlyArray<Record<string, unknown>>): void;
  /** Starts or ends an outage. */
  setOutage(outage: JwksOutage): void;
  close(): Promise<void>;
}

/** A node:http JWKS endpoint on an ephemeral loopback port, for the JWT tests. */
export async function startJwksServer(keys: ReadonlyArray<Record<string, unknown>> = []): Promise<JwksServer> {
  let published = keys;
  let outage: JwksOutage = 'none';
  let hits = 0;
  const hanging = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  const server = createServer((request, response) => {
    hits++;
    request.resume();
    switch (outage) {
      case 'error':
        response.writeHead(503, { 'content-type': 'text/plain' }).end('down');
        return;
      case 'reset':
        request.socket.destroy();
        return;
      case 'hang':
        hanging.add(response);
        return;
      case 'none':
        response.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: published }));
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    get hits() {
      return hits;
    },
    publish(next) {
      published = next;
    },
    setOutage(next) {
      outage = next;
    },
    close() {
      for (const response of hanging) response.destroy();
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
