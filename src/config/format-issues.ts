import type { z } from 'zod';

/**
 * Turns zod issues into the lines users read: `<file>: <path>: <problem>`.
 *
 * Two halves work together:
 * - `plainIssueMessage` is a per-parse zod error map. It words the issues the
 *   schema did not word itself (a schema's own `error` wins over a per-parse
 *   map, so the messages written in schema.ts come through unchanged);
 * - `formatIssues` adds the file and the path, and splits or merges the few
 *   issues whose shape does not fit one line.
 *
 * Parse with `schema.safeParse(data, { error: plainIssueMessage })`, then pass
 * the issues to `formatIssues`.
 */

/** A location in the parsed file: mapping keys and list indexes from the root. */
export type ConfigPath = readonly PropertyKey[];

/** Keys printed bare in a path; any other key is printed quoted in brackets. */
const BARE_KEY = /^[A-Za-z0-9_-]+$/;

/**
 * `routes[0].upstream`, `plans.pro.limits.hour`; the empty path is `(root)`.
 * A key that is not a plain word is quoted: `upstreams["my api"]`.
 */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && BARE_KEY.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out === '' ? '(root)' : out;
}

/** How a parsed YAML value is named in "got …". `null` is an empty value. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)})`;
    case 'number':
      if (Number.isNaN(value)) return '.nan';
      if (!Number.isFinite(value)) return value > 0 ? '.inf' : '-.inf';
      return `a number (${value})`;
    case 'boolean':
      return `a boolean (${value})`;
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}

/** The zod type names of `invalid_type` in YAML words. */
const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean',
  array: 'a list',
  tuple: 'a list',
  object: 'a mapping',
  record: 'a mapping',
  map: 'a mapping',
};

function quoteValue(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function bound(origin: string, limit: number | bigint, side: 'least' | 'most', inclusive: boolean): string {
  if (origin === 'array' || origin === 'set') return `must have at ${side} ${limit} ${limit === 1 ? 'entry' : 'entries'}`;
  if (origin === 'string') {
    if (side === 'least' && limit === 1) return 'must not be empty';
    return `must be at ${side} ${limit} characters long`;
  }
  if (!inclusive) return `must be ${side === 'least' ? 'greater' : 'less'} than ${limit}`;
  return `must be at ${side} ${limit}`;
}

/**
 * Per-parse zod error map giving plain messages. Returns `undefined` for
 * issue kinds the schema does not produce, so zod's own wording is used.
 */
export const plainIssueMessage: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return 'required';
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      // z.int() reports a fractional number as the wrong type: say just that.
      if (issue.expected === 'int' && typeof issue.input === 'number' && Number.isFinite(issue.input)) {
        return 'expected an integer';
      }
      // YAML reads `0001`, `1e5` or `no` as non-text; quoting is the cure.
      const quoteHint = issue.expected === 'string' && ['number', 'boolean'].includes(typeof issue.input) ? '; put it in quotes' : '';
      return `expected ${expected}, got ${describeValue(issue.input)}${quoteHint}`;
    }
    case 'too_small':
      return bound(issue.origin, issue.minimum, 'least', issue.inclusive !== false);
    case 'too_big':
      return bound(issue.origin, issue.maximum, 'most', issue.inclusive !== false);
    case 'invalid_value':
      return issue.values.length === 1
        ? `expected ${quoteValue(issue.values[0])}`
        : `expected one of ${issue.values.map(quoteValue).join(', ')}`;
    case 'unrecognized_keys':
      return 'unknown key';
    case 'invalid_key':
      return 'invalid name';
    default:
      return undefined;
  }
};

/**
 * One line per problem, `<file>: <path>: <problem>`, in the order zod found
 * them. `fileLabel` is printed exactly as given.
 *
 * - an unknown key gives one line per key, the key appended to the path;
 * - an invalid mapping key (a bad name in `upstreams:` or `plans:`) names the
 *   key in the path and gives the rule it breaks;
 * - the safe-integer bound zod adds to every `z.int()` is dropped when the
 *   schema's own, tighter bound is reported for the same path;
 * - a value that fits one alternative of a union by its type (a mapping
 *   where an integer or a mapping is allowed) gets that alternative's
 *   problems; one that fits none gets the union's own line.
 */
export function formatIssues(issues: readonly z.core.$ZodIssue[], fileLabel: string): string[] {
  const lines: string[] = [];
  const line = (path: ConfigPath, problem: string): void => {
    const text = `${fileLabel}: ${formatPath(path)}: ${problem}`;
    if (!lines.includes(text)) lines.push(text);
  };
  for (const issue of issues) {
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) line([...issue.path, key], 'unknown key');
        break;
      case 'invalid_key': {
        const reasons = issue.issues.map((inner) => inner.message).join('; ');
        line(issue.path, reasons === '' ? 'invalid name' : `invalid name: ${reasons}`);
        break;
      }
      case 'invalid_union': {
        const fitting = issue.errors.filter((option) => !option.some((inner) => inner.code === 'invalid_type' && inner.path.length === 0));
        if (fitting.length !== 1) {
          line(issue.path, issue.message);
          break;
        }
        const nested = fitting[0]!.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] }) as z.core.$ZodIssue);
        for (const text of formatIssues(nested, fileLabel)) if (!lines.includes(text)) lines.push(text);
        break;
      }
      case 'too_big':
        if (issue.origin === 'int' && issues.some((other) => other !== issue && other.code === 'too_big' && samePath(other.path, issue.path))) {
          break;
        }
        line(issue.path, issue.message);
        break;
      default:
        line(issue.path, issue.message);
    }
  }
  return lines;
}

function samePath(a: ConfigPath, b: ConfigPath): boolean {
  return a.length === b.length && a.every((segment, index) => segment === b[index]);
}
