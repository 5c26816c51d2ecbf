import { describe, expect, it } from 'vitest';
import { normalizeRequestPath } from '../../src/core/request-path.js';

describe('normalizeRequestPath', () => {
  it('leaves ordinary paths as they are', () => {
    expect(normalizeRequestPath('/api/v1/items')).toBe('/api/v1/items');
    expect(normalizeRequestPath('/files/report.v2.pdf')).toBe('/files/report.v2.pdf');
    expect(normalizeRequestPath('/')).toBe('/');
  });

  it('decodes escaped unreserved characters so routing sees what the upstream sees', () => {
    expect(normalizeRequestPath('/%61dmin')).toBe('/admin');
    expect(normalizeRequestPath('/a%7Eb')).toBe('/a~b');
  });

  it('keeps reserved escapes, upper-cased', () => {
    expect(normalizeRequestPath('/a%2fb')).toBe('/a%2Fb');
    expect(normalizeRequestPath('/q%20x')).toBe('/q%20x');
  });

  it.each(['/public/../admin', '/public/./x', '/a/..', '/%2e%2e/admin', '/public/%2E%2E/admin', '/x/.%2e/y'])(
    'refuses dot segments: %s',
    (path) => {
      expect(normalizeRequestPath(path)).toBeUndefined();
    },
  );

  it.each(['/a%zz', '/a%4', '/a\\..\\b', 'relative', ''])('refuses malformed paths: %s', (path) => {
    expect(normalizeRequestPath(path)).toBeUndefined();
  });
});
