import type { EventEmitter } from 'node:events';

/** Where a client's connection news goes: the gateway's logger (pino's `warn` and `info` signatures). */
export interface ClientEventLogger {
  warn(fields: object, message: string): void;
  info(message: string): void;
}

export interface ClientErrorLogOptions {
  /** Added to each line to tell the gateway's clients apart (`key-invalidation-subscriber`); absent: none. */
  readonly role?: string;
  /** Log `redis ready` each time the client (re)connects (the limiter's client does; the others stay quiet). */
  readonly logReady?: boolean;
}

/**
 * Logs `client`'s errors as `redis error` warnings, each distinct message
 * once: ioredis repeats the same error on every reconnect attempt, so only
 * a change is logged, and after the client is ready again the next error is
 * news. `client` is a RedisClient (any emitter of ioredis' `error` and
 * `ready` events). Also keeps ioredis from printing unhandled `error` events to stderr.
 */
export function logClientErrors(client: Pick<EventEmitter, 'on'>, logger: ClientEventLogger, options: ClientErrorLogOptions = {}): void {
  const role = options.role === undefined ? {} : { role: options.role };
  let lastError = '';
  client.on('error', (error: Error) => {
    if (error.message !== lastError) logger.warn({ err: error, ...role }, 'redis error');
    lastError = error.message;
  });
  client.on('ready', () => {
    lastError = '';
    if (options.logReady === true) logger.info('redis ready');
  });
}
