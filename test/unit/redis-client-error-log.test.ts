import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { logClientErrors } from '../../src/redis/client-error-log.js';

/** The lines logged, as `level message fields`. */
function recordingLogger(): { lines: string[]; warn(fields: object, message: string): void; info(message: string): void } {
  const lines: string[] = [];
  return {
    lines,
    warn: (fields, message) => {
      const { err, ...rest } = fields as { err?: Error };
      lines.push(`warn ${message} ${err?.message ?? '-'} ${JSON.stringify(rest)}`);
    },
    info: (message) => lines.push(`info ${message}`),
  };
}

describe('logClientErrors (the Redis clients\' error log)', () => {
  it('logs a repeated error once, a changed one again, and the same one again after the client was ready', () => {
    const client = new EventEmitter();
    const logger = recordingLogger();
    logClientErrors(client, logger);
    client.emit('error', new Error('ECONNREFUSED'));
    client.emit('error', new Error('ECONNREFUSED'));
    client.emit('error', new Error('ETIMEDOUT'));
    client.emit('ready');
    client.emit('error', new Error('ETIMEDOUT'));
    expect(logger.lines).toEqual([
      'warn redis error ECONNREFUSED {}',
      'warn redis error ETIMEDOUT {}',
      'warn redis error ETIMEDOUT {}',
    ]);
  });

  it('names the role on each line and logs "redis ready" only when asked', () => {
    const quiet = new EventEmitter();
    const loud = new EventEmitter();
    const logger = recordingLogger();
    logClientErrors(quiet, logger, { role: 'key-invalidation-subscriber' });
    logClientErrors(loud, logger, { logReady: true });
    quiet.emit('error', new Error('ECONNRESET'));
    quiet.emit('ready');
    loud.emit('ready');
    expect(logger.lines).toEqual(['warn redis error ECONNRESET {"role":"key-invalidation-subscriber"}', 'info redis ready']);
  });
});
