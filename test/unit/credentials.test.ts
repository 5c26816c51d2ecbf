import { describe, expect, it } from 'vitest';
import { isBearerApiKey, presentedApiKey } from '../../src/auth/credentials.js';

describe('presentedApiKey', () => {
  it('reads X-API-Key first', () => {
    expect(presentedApiKey('qg_a', 'Bearer qg_b', 'qg')).toEqual({ key: 'qg_a', header: 'x-api-key' });
  });

  it('reads a bearer token that has the key prefix', () => {
    expect(presentedApiKey(undefined, 'Bearer qg_b', 'qg')).toEqual({ key: 'qg_b', header: 'authorization' });
    expect(presentedApiKey(undefined, 'bearer   qg_b ', 'qg')).toEqual({ key: 'qg_b', header: 'authorization' });
  });

  it('leaves other bearer tokens and schemes alone', () => {
    expect(presentedApiKey(undefined, 'Bearer eyJhbGciOi.x.y', 'qg')).toBeUndefined();
    expect(presentedApiKey(undefined, 'Basic cWc6eA==', 'qg')).toBeUndefined();
    expect(presentedApiKey('', undefined, 'qg')).toBeUndefined();
  });
});

describe('isBearerApiKey', () => {
  it.each([
    ['Bearer qg_abc', true],
    ['bearer qg_abc', true],
    ['BEARER \t qg_abc', true],
    ['Bearer eyJhbGciOi.x.y', false],
    ['Bearer  qgx_abc', false],
    ['Bearerqg_abc', false],
    ['Basic qg_abc', false],
    ['qg_abc', false],
    ['Bearer ', false],
  ])('%s → %s', (authorization, expected) => {
    expect(isBearerApiKey(authorization, 'qg_')).toBe(expected);
  });
});
