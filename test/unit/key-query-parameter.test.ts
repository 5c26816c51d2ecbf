import { describe, expect, it } from 'vitest';
import { takeKeyParameter } from '../../src/http/key-query-parameter.js';

describe('takeKeyParameter', () => {
  it('takes the key out and keeps the other parameters byte for byte, in order', () => {
    expect(takeKeyParameter('?q=a%20b&api_key=qg_x&page=2', 'api_key')).toEqual({ key: 'qg_x', query: '?q=a%20b&page=2' });
  });

  it('removes every occurrence, also a percent-encoded name, and keeps the first value', () => {
    expect(takeKeyParameter('?api%5Fkey=first&x=1&api_key=second', 'api_key')).toEqual({ key: 'first', query: '?x=1' });
  });

  it('leaves nothing but the empty query when the key was all there was', () => {
    expect(takeKeyParameter('?api_key=qg_x', 'api_key')).toEqual({ key: 'qg_x', query: '' });
  });

  it('decodes the value, and keeps one that does not decode as sent', () => {
    expect(takeKeyParameter('?api_key=qg%5Fx', 'api_key').key).toBe('qg_x');
    expect(takeKeyParameter('?api_key=%E0%A4%A', 'api_key')).toEqual({ key: '%E0%A4%A', query: '' });
  });

  it('changes nothing without the parameter (a longer name is another parameter)', () => {
    expect(takeKeyParameter('?api_keys=1&q=2', 'api_key')).toEqual({ key: undefined, query: '?api_keys=1&q=2' });
    expect(takeKeyParameter('', 'api_key')).toEqual({ key: undefined, query: '' });
  });
});
