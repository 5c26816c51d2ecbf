import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { Pool } from 'undici';
import type { UpstreamConfig } from '../../src/config/schema.js';
import { GatewayError } from '../../src/core/errors.js';
import { ClientAddressResolver } from '../../src/proxy/client-address.js';
import { Forwarder, type ForwardOutcome, type ForwardRequest } from '../../src/proxy/forwarder.js';
import { UpstreamPools } from '../../src/proxy/upstream-pools.js';
import { unusedPort } from './ports.js';
import { startRecordingUpstream, type RecordingUpstream } from './recording-upstream.js';
import { within } from './within.js';

/**
 * The forwarder's integration harness: a recording upstream, and two front
 * servers standing in for the HTTP layer (one whose forwarder trusts no
 * proxy, one that trusts loopback), each with an undici client.
 */

/** Every network wait in the forwarder's tests is bounded by this. */
export const WAIT_MS = 5_000;
export const MB = 1024 * 1024;

export type Overrides = (incoming: IncomingMessage) => Partial<ForwardRequest>;

/** A stand-in for the HTTP layer: forwards every request and answers GatewayErrors with their code. */
export interface Front {
  readonly port: number;
  readonly client: Pool;
  readonly outcomes: ForwardOutcome[];
  /** Errors forward() threw that were not GatewayErrors. */
  readonly faults: unknown[];
  overrides: Overrides;
  close(): Promise<void>;
}

async function startFront(forwarder: Forwarder): Promise<Front> {
  const outcomes: ForwardOutcome[] = [];
  const faults: unknown[] = [];
  const front: { overrides: Overrides } = { overrides: () => ({}) };
  const server: Server = createServer((incoming, outgoing) => {
    const request: ForwardRequest = {
      upstream: 'main',
      incoming,
      outgoing,
      method: incoming.method ?? 'GET',
      path: incoming.url ?? '/',
      responseHeaders: [],
      maxBodyBytes: 64 * MB,
      credentialHeaders: ['x-api-key'],
      ...front.overrides(incoming),
    };
    forwarder.forward(request).then(
      (outcome) => outcomes.push(outcome),
      (error: unknown) => {
        if (!(error instanceof GatewayError)) {
          faults.push(error);
          outgoing.destroy();
          return;
        }
        const headers = ['content-type', 'application/json'];
        for (const [name, value] of error.headers) headers.push(name, value);
        outgoing.writeHead(error.status, headers);
        outgoing.end(JSON.stringify({ code: error.code }));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client = new Pool(`http://127.0.0.1:${port}`, { headersTimeout: WAIT_MS, bodyTimeout: WAIT_MS });
  return {
    port,
    client,
    outcomes,
    faults,
    get overrides() {
      return front.overrides;
    },
    set overrides(next: Overrides) {
      front.overrides = next;
    },
    async close() {
      await client.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function upstreamConfig(url: string, overrides: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return {
    url,
    connect_timeout_ms: 2_000,
    headers_timeout_ms: WAIT_MS,
    body_timeout_ms: WAIT_MS,
    connections: 4,
    keep_alive_timeout_ms: 4_000,
    queue_timeout_ms: WAIT_MS,
    ...overrides,
  };
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Sends `text` on a fresh connection and returns everything the server sent until it closed. */
export function rawExchange(port: number, text: string): Promise<string> {
  return within(
    new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(text));
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    }),
    WAIT_MS,
    'a raw exchange',
  );
}

/** Status and lowercase header names → values of a raw HTTP/1.1 response. */
export function parseRawResponse(raw: string): { status: number; headers: Record<string, string[]> } {
  const [head = ''] = raw.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string[]> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    (headers[line.slice(0, colon).toLowerCase()] ??= []).push(line.slice(colon + 1).trim());
  }
  return { status: Number(statusLine.split(' ')[1]), headers };
}

export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export interface ForwarderHarness {
  readonly upstream: RecordingUpstream;
  /** In front of a forwarder that trusts no proxy; upstreams `main`, `down` (nothing listens), `slow` (200 ms timeouts). */
  readonly front: Front;
  /** In front of a forwarder that trusts 127.0.0.0/8; upstream `main`. */
  readonly trustingFront: Front;
}

/**
 * Registers the hooks that start the harness before the file's tests, reset
 * it before each test (and check no forward() fault went unnoticed after
 * each), and stop it after the last. Read the fields inside tests only.
 */
export function useForwarderHarness(): ForwarderHarness {
  let upstream: RecordingUpstream | undefined;
  let forwarder: Forwarder | undefined;
  let trustingForwarder: Forwarder | undefined;
  let front: Front | undefined;
  let trustingFront: Front | undefined;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    const downPort = await unusedPort();
    forwarder = new Forwarder({
      pools: new UpstreamPools({
        main: upstreamConfig(upstream.origin),
        down: upstreamConfig(`http://127.0.0.1:${downPort}`),
        slow: upstreamConfig(upstream.origin, { headers_timeout_ms: 200, body_timeout_ms: 200 }),
      }),
      clientAddress: new ClientAddressResolver([]),
    });
    trustingForwarder = new Forwarder({
      pools: new UpstreamPools({ main: upstreamConfig(upstream.origin) }),
      clientAddress: new ClientAddressResolver(['127.0.0.0/8']),
    });
    front = await startFront(forwarder);
    trustingFront = await startFront(trustingForwarder);
  });

  afterAll(async () => {
    await Promise.all([front?.close(), trustingFront?.close()]);
    await Promise.all([forwarder?.destroy(), trustingForwarder?.destroy()]);
    await upstream?.close();
  });

  beforeEach(() => {
    upstream!.requests.length = 0;
    upstream!.configure({});
    for (const f of [front!, trustingFront!]) {
      f.outcomes.length = 0;
      f.faults.length = 0;
      f.overrides = () => ({});
    }
  });

  afterEach(() => {
    expect(front!.faults).toEqual([]);
    expect(trustingFront!.faults).toEqual([]);
  });

  return {
    get upstream() {
      return upstream!;
    },
    get front() {
      return front!;
    },
    get trustingFront() {
      return trustingFront!;
    },
  };
}
