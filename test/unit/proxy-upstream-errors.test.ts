import { describe, expect, it } from 'vitest';
import { errors } from 'undici';
import { GatewayError } from '../../src/core/errors.js';
import { BodyTooLargeError } from '../../src/proxy/body-limit.js';
import { isUpstreamTimeout, toGatewayError } from '../../src/proxy/upstream-errors.js';

function systemError(code: string): Error {
  return Object.assign(new Error(`connect ${code}`), { code });
}

describe('toGatewayError', () => {
  it('maps refused, reset, DNS and socket failures to 502 upstream_unavailable', () => {
    for (const cause of [
      systemError('ECONNREFUSED'),
      systemError('ECONNRESET'),
      systemError('ENOTFOUND'),
      new errors.SocketError('other side closed'),
      new errors.ClientClosedError(),
    ]) {
      const error = toGatewayError(cause, false) as GatewayError;
      expect(error).toBeInstanceOf(GatewayError);
      expect(error.code).toBe('upstream_unavailable');
      expect(error.status).toBe(502);
      expect(error.cause).toBe(cause);
      expect(error.headers).toEqual([]);
    }
  });

  it('maps connect and headers timeouts to 504 upstream_timeout', () => {
    for (const cause of [new errors.ConnectTimeoutError(), new errors.HeadersTimeoutError()]) {
      const error = toGatewayError(cause, false) as GatewayError;
      expect(error.code).toBe('upstream_timeout');
      expect(error.status).toBe(504);
    }
  });

  it('maps a body over the limit to 413', () => {
    const error = toGatewayError(new BodyTooLargeError(10), true) as GatewayError;
    expect(error.code).toBe('payload_too_large');
    expect(error.headers).toEqual([['connection', 'close']]);
  });

  it('asks to close the connection when the request body was not read to its end', () => {
    expect((toGatewayError(systemError('ECONNREFUSED'), true) as GatewayError).headers).toEqual([['connection', 'close']]);
  });

  it('keeps programming faults as they are', () => {
    const fault = new errors.InvalidArgumentError('invalid header');
    expect(toGatewayError(fault, false)).toBe(fault);
  });

  it('never names the upstream address in the client-facing detail', () => {
    const error = toGatewayError(systemError('ECONNREFUSED 10.0.0.7:8080'), false) as GatewayError;
    expect(error.detail).not.toContain('10.0.0.7');
  });
});

describe('isUpstreamTimeout', () => {
  it('recognizes the three undici timeouts only', () => {
    expect(isUpstreamTimeout(new errors.BodyTimeoutError())).toBe(true);
    expect(isUpstreamTimeout(new errors.HeadersTimeoutError())).toBe(true);
    expect(isUpstreamTimeout(new errors.ConnectTimeoutError())).toBe(true);
    expect(isUpstreamTimeout(systemError('ETIMEDOUT'))).toBe(false);
    expect(isUpstreamTimeout('UND_ERR_BODY_TIMEOUT')).toBe(false);
  });
});
