import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/core/errors.js';
import {
  assertBodyWithinLimit,
  BodyLimitStream,
  BodyTooLargeError,
  hasRequestBody,
} from '../../src/proxy/body-limit.js';

function sink(into: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      into.push(chunk);
      callback();
    },
  });
}

describe('assertBodyWithinLimit', () => {
  it('accepts a missing or in-limit Content-Length', () => {
    expect(() => assertBodyWithinLimit({}, 10)).not.toThrow();
    expect(() => assertBodyWithinLimit({ 'content-length': '10' }, 10)).not.toThrow();
    expect(() => assertBodyWithinLimit({ 'transfer-encoding': 'chunked' }, 0)).not.toThrow();
  });

  it('rejects a declared length over the limit with 413 and Connection: close', () => {
    let thrown: unknown;
    try {
      assertBodyWithinLimit({ 'content-length': '11' }, 10);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GatewayError);
    const error = thrown as GatewayError;
    expect(error.code).toBe('payload_too_large');
    expect(error.status).toBe(413);
    expect(error.headers).toEqual([['connection', 'close']]);
  });
});

describe('hasRequestBody', () => {
  it('follows framing, not the method', () => {
    expect(hasRequestBody({})).toBe(false);
    expect(hasRequestBody({ 'content-length': '0' })).toBe(false);
    expect(hasRequestBody({ 'content-length': '3' })).toBe(true);
    expect(hasRequestBody({ 'transfer-encoding': 'chunked' })).toBe(true);
  });
});

describe('BodyLimitStream', () => {
  it('passes up to the limit through unchanged', async () => {
    const out: Buffer[] = [];
    const limit = new BodyLimitStream(6);
    await pipeline(Readable.from([Buffer.from('abc'), Buffer.from('def')]), limit, sink(out));
    expect(Buffer.concat(out).toString()).toBe('abcdef');
    expect(limit.passedBytes).toBe(6);
  });

  it('fails once one byte more than the limit has arrived, without passing it on', async () => {
    const out: Buffer[] = [];
    const run = pipeline(Readable.from([Buffer.from('abc'), Buffer.from('defg')]), new BodyLimitStream(6), sink(out));
    await expect(run).rejects.toBeInstanceOf(BodyTooLargeError);
    expect(Buffer.concat(out).toString()).toBe('abc');
  });
});
