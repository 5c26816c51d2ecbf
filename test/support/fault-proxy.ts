import { createServer, type Server, type Socket, connect } from 'node:net';

/**
 * What the proxy does with the bytes it carries:
 * - `pass`: forwards them at once;
 * - `blackhole`: accepts connections and keeps them open, but drops every
 *   byte in both directions (a dead middlebox, a partitioned network: the
 *   peer sees no error, only silence);
 * - `delay`: forwards them `delayMs` later, in order.
 */
export type FaultMode = { readonly kind: 'pass' } | { readonly kind: 'blackhole' } | { readonly kind: 'delay'; readonly delayMs: number };

/** A TCP proxy on 127.0.0.1 in front of one target, whose faults a test switches; see startFaultProxy. */
export interface FaultProxy {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Applies to every byte that arrives from now on, on open and new connections. */
  setMode(mode: FaultMode): void;
  /** Closes every open connection (both sides); new connections are still accepted. Returns how many were cut. */
  cut(): number;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

export const PASS: FaultMode = { kind: 'pass' };
export const BLACKHOLE: FaultMode = { kind: 'blackhole' };
export const delayBy = (delayMs: number): FaultMode => ({ kind: 'delay', delayMs });

/**
 * Starts a proxy on an ephemeral port that forwards to `targetPort` on
 * 127.0.0.1, in `pass` mode. Each accepted connection gets its own
 * connection to the target.
 */
export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  let mode: FaultMode = PASS;
  let accepted = 0;
  const pairs = new Set<readonly [Socket, Socket]>();

  /** Forwards `from`'s bytes to `to` by the mode current when each chunk arrives; delayed chunks keep their order. */
  const relay = (from: Socket, to: Socket) => {
    let lastDueMs = 0;
    from.on('data', (chunk: Buffer) => {
      if (mode.kind === 'blackhole') return;
      const delayMs = mode.kind === 'delay' ? mode.delayMs : 0;
      const dueMs = Math.max(Date.now() + delayMs, lastDueMs);
      lastDueMs = dueMs;
      if (dueMs <= Date.now()) {
        if (!to.destroyed) to.write(chunk);
        return;
      }
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, dueMs - Date.now());
    });
  };

  const server: Server = createServer((client) => {
    accepted += 1;
    const target = connect(targetPort, '127.0.0.1');
    const pair = [client, target] as const;
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      target.destroy();
    };
    client.on('error', end).on('close', end);
    target.on('error', end).on('close', end);
    relay(client, target);
    relay(target, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy: no TCP address');
  const cut = () => {
    const count = pairs.size;
    for (const [client, target] of [...pairs]) {
      client.destroy();
      target.destroy();
    }
    pairs.clear();
    return count;
  };
  return {
    port: address.port,
    url: `redis://127.0.0.1:${address.port}`,
    setMode(next) {
      mode = next;
    },
    cut,
    get accepted() {
      return accepted;
    },
    close() {
      cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
