/**
 * The one path rule of the proxy listener (docs/http-interface.md, "One path
 * for everyone"): the path a request is routed, authenticated and charged on
 * is the path the upstream is sent, and a path that the servers people put
 * behind gateways (Spring/Tomcat/Jetty, nginx, Express, Go net/http,
 * Django/Flask, ASP.NET/IIS) could read as another path is refused.
 */

/** Why a path is refused (400 `bad_request`); `refused` completes "The request path …". */
export interface PathRefusal {
  readonly refused: string;
}

const refusal = (refused: string): PathRefusal => Object.freeze({ refused });

/** Each refusal, made once: the hot path allocates nothing to refuse. */
export const PATH_REFUSALS = Object.freeze({
  notAPath: refusal('does not start with "/"'),
  invalidCharacter: refusal('holds a character that must be percent-encoded (a control, space or non-ASCII character)'),
  malformedEscape: refusal('holds a "%" that does not start a two-digit hex escape'),
  encodedSlash: refusal('holds an encoded "/" or "\\" (%2F, %5C), which some servers decode before routing'),
  backslash: refusal('holds a "\\", which some servers read as "/"'),
  encodedControl: refusal('holds an encoded control character (%00–%1F, %7F)'),
  doubleEncoded: refusal('holds an escaped escape (%25 and two hex digits), which a server decoding twice reads as another character'),
  invalidUtf8: refusal('holds escapes that are not UTF-8 (overlong or truncated sequences)'),
  dotSegment: refusal('holds a "." or ".." segment (also with ";parameters" or an encoded dot)'),
  trailingDotOrSpace: refusal('holds a segment ending in "." or a space, which Windows servers drop'),
});

/** Unreserved characters (RFC 3986 §2.3), by code: their escapes are decoded. */
const UNRESERVED = new Uint8Array(128);
for (const char of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[char.charCodeAt(0)] = 1;

/** What the first scan does with each ASCII character: pass it, refuse it, rewrite the path, or check dots. */
const PLAIN = 0;
const INVALID = 1;
const REWRITTEN = 2;
const DOTTED = 3;
const CHARACTER_KIND = new Uint8Array(128);
for (let code = 0; code <= 0x20; code++) CHARACTER_KIND[code] = INVALID;
CHARACTER_KIND[0x7f] = INVALID;
for (const char of '%;\\') CHARACTER_KIND[char.charCodeAt(0)] = REWRITTEN;
CHARACTER_KIND['.'.charCodeAt(0)] = DOTTED;

const SLASH = 0x2f;
const PERCENT = 0x25;
const DOT = 0x2e;
const SEMICOLON = 0x3b;
const BACKSLASH = 0x5c;
const HEX_DIGITS = '0123456789ABCDEF';
const NON_ASCII_ESCAPE = /%[89A-F]/;

/**
 * The path to route on and forward, or why it is refused. `path` is the
 * request target's path, without the query.
 *
 * - Escapes of unreserved characters are decoded (`%61` → `a`, `%2e` → `.`),
 *   other escapes upper-cased (RFC 3986 §6.2.2).
 * - `;parameters` are cut from every segment (`/a;v=1/b` → `/a/b`): Tomcat,
 *   Jetty and Spring route without them, so the gateway matches and forwards
 *   the same path they serve, and every other server gets that path too.
 * - Refused: raw characters outside visible ASCII, a malformed escape, an
 *   encoded `/` or `\`, a raw `\`, an encoded control character (`%00`), an
 *   escaped escape (`%252e`), escapes that are not UTF-8 (overlong `%C0%AE`),
 *   a segment of dots once its `;parameters` (or `%3B…`) and spaces are
 *   removed (`..`, `..;x`, `.%2e`, `.. `), and a segment ending in `.` or a
 *   space (IIS drops them: `/admin.` is `/admin` there).
 *
 * Paths of visible ASCII without `%`, `;` or `\` (nearly all) are returned
 * as they are, after one scan (and, when they hold a `.`, a check of the
 * segments ending in one), without allocating.
 */
export function normalizeRequestPath(path: string): string | PathRefusal {
  if (path.charCodeAt(0) !== SLASH) return PATH_REFUSALS.notAPath;
  let dotted = false;
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    const kind = code < 128 ? CHARACTER_KIND[code]! : INVALID;
    if (kind === PLAIN) continue;
    if (kind === INVALID) return PATH_REFUSALS.invalidCharacter;
    if (kind === REWRITTEN) return normalizeSlowly(path);
    dotted = true;
  }
  return dotted ? checkDots(path) : path;
}

/** A path whose only special character is `.` (`/files/report.v2.pdf`): itself, or the dot refusal. Allocates nothing. */
function checkDots(path: string): string | PathRefusal {
  let start = 1;
  while (start <= path.length) {
    let end = path.indexOf('/', start);
    if (end === -1) end = path.length;
    if (end > start && path.charCodeAt(end - 1) === DOT) {
      let onlyDots = true;
      for (let i = start; i < end - 1 && onlyDots; i++) onlyDots = path.charCodeAt(i) === DOT;
      return onlyDots ? PATH_REFUSALS.dotSegment : PATH_REFUSALS.trailingDotOrSpace;
    }
    start = end + 1;
  }
  return path;
}

/** The path rule for paths that hold `%`, `;` or `\` (see {@link normalizeRequestPath}). */
function normalizeSlowly(path: string): string | PathRefusal {
  let out = '';
  let start = 1;
  while (start <= path.length) {
    let end = path.indexOf('/', start);
    if (end === -1) end = path.length;
    const segment = decodeSegment(path, start, end);
    if (typeof segment !== 'string') return segment;
    const problem = segmentProblem(segment);
    if (problem !== undefined) return problem;
    const parameters = segment.indexOf(';');
    out += '/' + (parameters === -1 ? segment : segment.slice(0, parameters));
    start = end + 1;
  }
  // Escapes of bytes 0x80 and above must spell UTF-8; an overlong "." (%C0%AE) does not.
  if (out.includes('%') && NON_ASCII_ESCAPE.test(out)) {
    try {
      decodeURIComponent(out);
    } catch {
      return PATH_REFUSALS.invalidUtf8;
    }
  }
  return out;
}

/** `path[start, end)` with unreserved escapes decoded and the rest upper-cased, or why it is refused. */
function decodeSegment(path: string, start: number, end: number): string | PathRefusal {
  let out = '';
  let copiedTo = start;
  for (let i = start; i < end; i++) {
    const code = path.charCodeAt(i);
    if (code === BACKSLASH) return PATH_REFUSALS.backslash;
    if (code <= 0x20 || code >= 0x7f) return PATH_REFUSALS.invalidCharacter;
    if (code !== PERCENT) continue;
    const high = hexValue(path.charCodeAt(i + 1));
    const low = hexValue(path.charCodeAt(i + 2));
    if (i + 2 >= end || high < 0 || low < 0) return PATH_REFUSALS.malformedEscape;
    const byte = high * 16 + low;
    if (byte === SLASH || byte === BACKSLASH) return PATH_REFUSALS.encodedSlash;
    if (byte < 0x20 || byte === 0x7f) return PATH_REFUSALS.encodedControl;
    if (byte === PERCENT && hexValue(path.charCodeAt(i + 3)) >= 0 && hexValue(path.charCodeAt(i + 4)) >= 0 && i + 4 < end) {
      return PATH_REFUSALS.doubleEncoded;
    }
    out += path.slice(copiedTo, i) + (byte < 0x80 && UNRESERVED[byte] === 1 ? String.fromCharCode(byte) : `%${HEX_DIGITS[high]}${HEX_DIGITS[low]}`);
    copiedTo = i + 3;
    i += 2;
  }
  return copiedTo === start ? path.slice(start, end) : out + path.slice(copiedTo, end);
}

/**
 * Why a decoded segment is refused, if it is: dots only once `;parameters`
 * (raw or `%3B`) and spaces are set aside, or a last character (before the
 * parameters) that is `.` or a space.
 */
function segmentProblem(segment: string): PathRefusal | undefined {
  let base = segment;
  const parameters = segment.indexOf(';');
  if (parameters !== -1) base = base.slice(0, parameters);
  const encodedParameters = base.indexOf('%3B');
  if (encodedParameters !== -1) base = base.slice(0, encodedParameters);
  if (base.length === 0) return undefined;
  let dots = 0;
  let others = 0;
  for (let i = 0; i < base.length; i++) {
    if (base.charCodeAt(i) === DOT) dots++;
    else if (base.startsWith('%20', i)) i += 2;
    else others++;
  }
  if (dots > 0 && others === 0) return PATH_REFUSALS.dotSegment;
  if (base.charCodeAt(base.length - 1) === DOT || base.endsWith('%20')) return PATH_REFUSALS.trailingDotOrSpace;
  return undefined;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** Whether a refusal, not a path, came back from {@link normalizeRequestPath}. */
export function isPathRefusal(result: string | PathRefusal): result is PathRefusal {
  return typeof result !== 'string';
}
