import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/**
 * Whether the module at `moduleUrl` is the script node was started with
 * (`node --import tsx bench/upstream.ts`), as opposed to being imported.
 */
export function isMainModule(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return pathToFileURL(realpathSync(entry)).href === moduleUrl;
  } catch {
    return false;
  }
}

/** Resolves with the signal's name on the first SIGINT or SIGTERM. */
export function waitForShutdownSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** A server a bench script starts (the upstream, a proxy): where it answers, and how to stop it. */
interface ClosableServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The whole life of a bench server run as a script: validate `--port`
 * (`rawPort`, else `PORT`, else `defaultPort`), start the server, print
 * `listening on <url>`, and close it on SIGINT or SIGTERM. Any failure is
 * printed and exits 1. Call it under `if (isMainModule(import.meta.url))`,
 * which also keeps the script's own `parseArgs` from running when imported.
 */
export function serveAsScript(rawPort: string | undefined, defaultPort: number, start: (port: number) => Promise<ClosableServer>): void {
  const serve = async (): Promise<void> => {
    const raw = rawPort ?? process.env['PORT'];
    const port = Number(raw ?? defaultPort);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`--port: expected a port number, got "${raw}"`);
    const server = await start(port);
    console.log(`listening on ${server.url}`);
    await waitForShutdownSignal();
    await server.close();
  };
  serve().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
