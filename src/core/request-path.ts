const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const PERCENT_ESCAPE = /%([0-9A-Fa-f]{2})/g;

/**
 * The path routes are matched on and the upstream receives, or undefined when
 * the path must be refused (400).
 *
 * Routing on a path the upstream would read differently lets a caller slip
 * past a route's auth (`/public/../admin`, `/%61dmin`). So, per RFC 3986
 * §6.2.2: percent-escapes of unreserved characters are decoded and other
 * escapes upper-cased; then a path holding a `.` or `..` segment, a
 * backslash, or a malformed escape is refused rather than rewritten. Paths
 * without `%`, `.` or `\` (almost all) are returned as they are.
 */
export function normalizeRequestPath(path: string): string | undefined {
  if (path.charCodeAt(0) !== 47 /* / */) return undefined;
  if (!path.includes('%') && !path.includes('.') && !path.includes('\\')) return path;
  let normalized = path;
  if (path.includes('%')) {
    normalized = path.replace(PERCENT_ESCAPE, (escape, hex: string) => {
      const char = String.fromCharCode(parseInt(hex, 16));
      return UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
    });
    if (/%(?![0-9A-F]{2})/.test(normalized)) return undefined;
  }
  if (normalized.includes('\\')) return undefined;
  if (/\/\.\.?(?:\/|$)/.test(normalized)) return undefined;
  return normalized;
}
