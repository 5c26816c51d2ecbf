import { GatewayError } from '../../core/errors.js';
import type { Exchange } from '../exchange.js';

/**
 * Refuses a request whose declared Content-Length exceeds the route's limit
 * with 413, before it is authenticated or charged. Chunked bodies are counted
 * while they stream (see the forwarder).
 */
export function bodyLimit(options: { maxBodyBytes: number }): (exchange: Exchange) => void {
  return function bodyLimitStep(exchange) {
    const declared = exchange.req.headers['content-length'];
    if (declared !== undefined) {
      const maxBodyBytes = exchange.route?.config.max_body_bytes ?? options.maxBodyBytes;
      if (Number(declared) > maxBodyBytes) {
        throw new GatewayError('payload_too_large', `The request body exceeds ${maxBodyBytes} bytes.`, {
          max_body_bytes: maxBodyBytes,
        });
      }
    }
  };
}
