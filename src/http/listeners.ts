import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { enforceListenerLimits, type ListenerLimits, listenerServerOptions } from './listener-limits.js';
import type { ProxyRequestListener } from './proxy-handler.js';

/**
 * The lifecycle of the two listeners: open (resolving once listening),
 * drain (stop accepting, let open requests finish for a bounded time, then
 * cut) and close. Only the composition root (main.ts) calls these: it is the
 * one place that opens sockets.
 */

/** The admin listener's request handler, as @hono/node-server calls it. */
export type AdminFetchHandler = Parameters<typeof serve>[0]['fetch'];

/** Where a listener binds (`listeners.proxy` / `listeners.admin` of gateway.yaml). */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** The admin listener: hono on @hono/node-server. Resolves once it listens; rejects with its listen error (a port in use). */
export function listenAdmin(fetch: AdminFetchHandler, address: ListenAddress, limits: ListenerLimits): Promise<Server> {
  const server = serve({ fetch, hostname: address.host, port: address.port, serverOptions: listenerServerOptions(limits) }) as Server;
  enforceListenerLimits(server, limits);
  return listening(server);
}

/** The proxy listener: plain node:http, no framework between the socket and the pipeline. Resolves once it listens. */
export function listenProxy(handler: ProxyRequestListener, address: ListenAddress, limits: ListenerLimits): Promise<Server> {
  const server = createServer(listenerServerOptions(limits), (req, res) => {
    // The pipeline answers every failure itself; this only keeps a programming fault from crashing the process.
    handler(req, res).catch((error: unknown) => {
      res.destroy(error instanceof Error ? error : undefined);
    });
  });
  enforceListenerLimits(server, limits);
  server.listen(address.port, address.host);
  return listening(server);
}

/** Resolves once `server` listens; rejects with its listen error (a port in use). */
function listening(server: Server): Promise<Server> {
  return new Promise((resolve, reject) => {
    if (server.listening) {
      resolve(server);
      return;
    }
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** `http://host:port` of a listening server (IPv6 hosts in brackets). */
export function urlOf(server: Server): string {
  const { address, family, port } = server.address() as AddressInfo;
  return `http://${family === 'IPv6' ? `[${address}]` : address}:${port}`;
}

/** How often a draining listener closes connections that became idle, in ms. */
const IDLE_SWEEP_INTERVAL_MS = 50;

/**
 * Stops accepting, then waits for open requests to finish. Idle keep-alive
 * connections are closed as they become idle; after `timeoutMs` the rest are
 * cut. Resolves once the server is closed.
 */
export async function drain(server: Server, timeoutMs: number): Promise<void> {
  const closed = closeServer(server);
  server.closeIdleConnections();
  const idleSweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_INTERVAL_MS);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const result = await Promise.race([closed.then(() => 'closed' as const), timedOut]);
  clearInterval(idleSweep);
  clearTimeout(timer);
  if (result === 'timeout') {
    server.closeAllConnections();
    await closed;
  }
}

/** Whether `work` settled (either way) before `deadlineMs` (a performance.now() time). */
export async function settledBy(work: Promise<unknown>, deadlineMs: number): Promise<'settled' | 'late'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), Math.max(0, deadlineMs - performance.now()));
  });
  const result = await Promise.race([work.then(() => 'settled' as const, () => 'settled' as const), late]);
  clearTimeout(timer);
  return result;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
