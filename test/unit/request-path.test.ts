import { describe, expect, it } from 'vitest';
import { PATH_REFUSALS, type PathRefusal, normalizeRequestPath } from '../../src/core/request-path.js';

/**
 * The path rule as a table: each request target's path, and either the path
 * routed on and forwarded or the rule that refuses it. The servers named are
 * those that would read the refused path as another path.
 */
const R = PATH_REFUSALS;

const accepted: ReadonlyArray<readonly [string, string]> = [
  ['/api/v1/items', '/api/v1/items'],
  ['/', '/'],
  ['/api/', '/api/'],
  ['/files/report.v2.pdf', '/files/report.v2.pdf'],
  ['/.well-known/openid-configuration', '/.well-known/openid-configuration'],
  ['/a..b/...c', '/a..b/...c'],
  // Escaped unreserved characters are decoded, so routing sees what every upstream sees.
  ['/%61dmin', '/admin'],
  ['/a%7Eb', '/a~b'],
  ['/%2Ehidden', '/.hidden'],
  // Other escapes stay, upper-cased.
  ['/q%20x', '/q%20x'],
  ['/q%3ax', '/q%3Ax'],
  ['/caf%c3%a9', '/caf%C3%A9'],
  ['/100%25', '/100%25'],
  ['/%25zz', '/%25zz'],
  // ;parameters are cut from every segment (Tomcat, Jetty and Spring route without them).
  ['/api/costly;v=1/search', '/api/costly/search'],
  ['/api/costly;/search', '/api/costly/search'],
  ['/app;jsessionid=ABC', '/app'],
  ['/a;x;y/b;z', '/a/b'],
  ['/;x/api', '//api'],
  // An encoded ";" is data, not a parameter delimiter.
  ['/a%3Bv=1/b', '/a%3Bv=1/b'],
  // Empty segments are kept as sent (the route table skips them).
  ['/api//x', '/api//x'],
];

const refused: ReadonlyArray<readonly [string, PathRefusal]> = [
  ['relative', R.notAPath],
  ['', R.notAPath],
  ['*', R.notAPath],
  // Dot segments, however spelled (every server resolves them).
  ['/public/../api/secret', R.dotSegment],
  ['/public/./x', R.dotSegment],
  ['/a/..', R.dotSegment],
  ['/%2e%2e/admin', R.dotSegment],
  ['/public/%2E%2E/admin', R.dotSegment],
  ['/x/.%2e/y', R.dotSegment],
  // ...also with ;parameters (Tomcat/Jetty/Spring read "..;" as "..").
  ['/public/..;/api/secret', R.dotSegment],
  ['/public/.;x/api', R.dotSegment],
  ['/public/%2e%2e;/api/secret', R.dotSegment],
  ['/public/..;a=b;c/api', R.dotSegment],
  ['/public/..%3B/api', R.dotSegment],
  // ...and with spaces or extra dots (Windows/IIS trims them).
  ['/public/..%20/api', R.dotSegment],
  ['/public/.../api', R.dotSegment],
  // Encoded "/" and "\" (Go's ServeMux, Tomcat with ALLOW_ENCODED_SLASH, IIS decode them before routing).
  ['/public/%2e%2e%2fapi/secret', R.encodedSlash],
  ['/api/costly%2Fsearch', R.encodedSlash],
  ['/api/costly%2fsearch', R.encodedSlash],
  ['/public/..%5Capi/secret', R.encodedSlash],
  ['/public/..%5capi/secret', R.encodedSlash],
  // A raw "\" (ASP.NET, IIS and browsers read it as "/").
  ['/public/..\\api/secret', R.backslash],
  ['/a\\b', R.backslash],
  // Encoded control characters: NUL truncates paths in C-based servers (Jetty's "..%00").
  ['/public/..%00/api', R.encodedControl],
  ['/a%00', R.encodedControl],
  ['/a%0Ab', R.encodedControl],
  ['/a%7f', R.encodedControl],
  // Double encoding (a server that decodes twice reads "%252e" as ".").
  ['/public/%252e%252e/api/secret', R.doubleEncoded],
  ['/api/costly%252Fsearch', R.doubleEncoded],
  ['/a%2541', R.doubleEncoded],
  // Escapes that are not UTF-8: overlong "." and "/" (old IIS and Tomcat decoded them).
  ['/public/%c0%ae%c0%ae/api', R.invalidUtf8],
  ['/public/%C0%AFapi', R.invalidUtf8],
  ['/public/%e0%80%ae%e0%80%ae/api', R.invalidUtf8],
  ['/a%ff', R.invalidUtf8],
  ['/a%c3', R.invalidUtf8],
  ['/a%ed%a0%80', R.invalidUtf8],
  // Malformed escapes, IIS's %u form included.
  ['/a%zz', R.malformedEscape],
  ['/a%4', R.malformedEscape],
  ['/a%', R.malformedEscape],
  ['/%u002e%u002e/api', R.malformedEscape],
  // A trailing "." or space (Windows drops it: "/admin." is "/admin" on IIS).
  ['/admin.', R.trailingDotOrSpace],
  ['/admin%20', R.trailingDotOrSpace],
  ['/admin.;x/y', R.trailingDotOrSpace],
  // Characters that must be percent-encoded.
  ['/a b', R.invalidCharacter],
  ['/caf\u00e9', R.invalidCharacter],
  ['/a\u0000b', R.invalidCharacter],
  ['/a\tb', R.invalidCharacter],
];

describe('normalizeRequestPath', () => {
  it.each(accepted)('routes and forwards %s as %s', (path, normalized) => {
    expect(normalizeRequestPath(path)).toBe(normalized);
  });

  it.each(refused)('refuses %s', (path, reason) => {
    expect(normalizeRequestPath(path)).toBe(reason);
  });

  it('returns an ordinary path itself, without copying', () => {
    const path = '/api/v1/items/42';
    expect(normalizeRequestPath(path)).toBe(path);
  });

  it('gives every refusal its own sentence', () => {
    const sentences = Object.values(PATH_REFUSALS).map((r) => r.refused);
    expect(new Set(sentences).size).toBe(sentences.length);
  });
});
