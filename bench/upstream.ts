import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { isMainModule, serveAsScript } from './process.js';

/**
 * The bench (and demo) upstream: answers every request 200 with the same small
 * JSON body and a fixed Content-Length, after draining the request body. It
 * does as little as possible so that the rows of the bench measure the
 * gateway in front of it, not the upstream.
 */

/** The body of every response: 60 bytes of JSON. */
export const UPSTREAM_BODY = Buffer.from('{"ok":true,"service":"quotagate-bench-upstream","version":1}\n');

const RESPONSE_HEADERS = [
  'Content-Type', 'application/json',
  'Content-Length', String(UPSTREAM_BODY.length),
];

export interface BenchUpstreamOptions {
  /** TCP port; 0 picks a free one. */
  readonly port: number;
  /** Interface to bind; 127.0.0.1 when omitted. */
  readonly host?: string;
}

export interface RunningServer {
  /** Origin the server answers on, e.g. `http://127.0.0.1:9000`. */
  readonly url: string;
  /** Stops accepting, closes every connection and resolves once the server is closed. */
  close(): Promise<void>;
}

/** Starts the upstream and resolves once it is listening. */
export async function startBenchUpstream(options: BenchUpstreamOptions): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer(answerOk);
  // Longer than any gateway pool's keep-alive, so the gateway decides when to close.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      }),
  };
}

function answerOk(request: IncomingMessage, response: ServerResponse): void {
  const send = (): void => {
    response.writeHead(200, RESPONSE_HEADERS);
    response.end(UPSTREAM_BODY);
  };
  if (request.complete) {
    send();
    return;
  }
  request.once('end', send);
  request.resume();
}

if (isMainModule(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' } } });
  serveAsScript(values.port, 9000, (port) => startBenchUpstream({ port, host: values.host ?? '127.0.0.1' }));
}
