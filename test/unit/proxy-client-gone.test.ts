import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ClientClosedError, ClientGoneSignal } from '../../src/proxy/client-gone.js';

function response(): ServerResponse {
  return new ServerResponse(new IncomingMessage(new Socket()));
}

describe('ClientGoneSignal', () => {
  it('aborts with ClientClosedError when the response closes unfinished', () => {
    const outgoing = response();
    const signal = new ClientGoneSignal(outgoing);
    let aborts = 0;
    signal.on('abort', () => aborts++);
    expect(signal.aborted).toBe(false);
    outgoing.emit('close');
    expect(aborts).toBe(1);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(ClientClosedError);
  });

  it('does not abort when the response had finished', () => {
    const outgoing = response();
    Object.defineProperty(outgoing, 'writableFinished', { value: true });
    const signal = new ClientGoneSignal(outgoing);
    outgoing.emit('close');
    expect(signal.aborted).toBe(false);
  });

  it('stops watching once released', () => {
    const outgoing = response();
    const signal = new ClientGoneSignal(outgoing);
    signal.release();
    expect(outgoing.listenerCount('close')).toBe(0);
    outgoing.emit('close');
    expect(signal.aborted).toBe(false);
  });
});
