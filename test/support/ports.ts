import { createServer } from 'node:net';

/**
 * A TCP port on 127.0.0.1 that nothing listens on: bound, read and released.
 * For "upstream is down" tests; another process could take it in between,
 * which on a test machine is unlikely enough.
 */
export function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('expected a TCP address'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}
