import { isMap, isScalar, isSeq, parseDocument, Scalar, type Document } from 'yaml';

/**
 * `${VAR}` / `${VAR:-default}` interpolation in gateway.yaml.
 *
 * It runs on the parsed YAML document, after syntax checking and before schema
 * validation, on string values only (never on mapping keys), so a value from
 * the environment can never change the document's structure and every error
 * names the path of the value it came from.
 *
 * Rules (docs/configuration.md repeats them for users):
 * - `${NAME}` is the variable's value; unset is an error, set-but-empty is "";
 * - `${NAME:-default}` is the default when the variable is unset or empty; the
 *   default runs to the first `}` and cannot itself contain `${`;
 * - `$${` is a literal `${`; any other `$` is kept as it is;
 * - NAME is `[A-Za-z_][A-Za-z0-9_]*`.
 * - A value that is exactly one `${…}` is read as YAML would read the
 *   substituted text written unquoted in its place, so `port: ${PORT:-8080}`
 *   is the number 8080 and `hide_headers: ${HIDE:-false}` the boolean false.
 *   Quoting does not change this (the expression must be quoted inside a flow
 *   collection such as `{ port: "${PORT}" }`, whose braces are YAML syntax);
 *   an explicit tag does: `!!str ${ID}` stays a string. Only numbers,
 *   booleans and null come out of this; any other text stays the string it
 *   was. A value with anything around the expression is always a string.
 */

/** The environment, as given by the composition root; never read here from process.env. */
export type Env = Readonly<Record<string, string | undefined>>;

/** A problem found while interpolating, at `path` (mapping keys and list indexes). */
export interface InterpolationIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** The expansion of one string: its text and whether it was exactly one `${…}`. */
export type Expansion =
  | { readonly ok: true; readonly text: string; readonly wholeExpression: boolean }
  | { readonly ok: false; readonly problems: readonly string[] };

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s;

/** Expands every `${…}` in `text` from `env`; reports every unset variable. */
export function expandString(text: string, env: Env): Expansion {
  const problems: string[] = [];
  let out = '';
  let index = 0;
  let wholeExpression = false;
  while (index < text.length) {
    const dollar = text.indexOf('$', index);
    if (dollar === -1) {
      out += text.slice(index);
      break;
    }
    out += text.slice(index, dollar);
    if (text.startsWith('$${', dollar)) {
      out += '${';
      index = dollar + 3;
      continue;
    }
    if (text[dollar + 1] !== '{') {
      out += '$';
      index = dollar + 1;
      continue;
    }
    const close = text.indexOf('}', dollar + 2);
    if (close === -1) {
      problems.push('unterminated "${" (write "$${" for a literal "${")');
      break;
    }
    const body = text.slice(dollar + 2, close);
    index = close + 1;
    const match = REFERENCE.exec(body);
    if (match === null) {
      problems.push(`invalid reference "\${${body}}": expected \${NAME} or \${NAME:-default}`);
      continue;
    }
    const name = match[1]!;
    const fallback = match[2];
    if (fallback?.includes('${')) {
      problems.push(`invalid reference "\${${body}}": a default cannot contain "\${"`);
      continue;
    }
    const value = env[name];
    if (fallback !== undefined) {
      out += value === undefined || value === '' ? fallback : value;
    } else if (value === undefined) {
      problems.push(`environment variable "${name}" is not set`);
    } else {
      out += value;
    }
    wholeExpression = dollar === 0 && close === text.length - 1;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, text: out, wholeExpression };
}

/**
 * The value YAML would give `text` as an unquoted scalar, if that is a number,
 * a boolean or null; otherwise `text` unchanged (so no folding or trimming of
 * strings, and text that would parse as a list or mapping stays a string).
 */
export function resolvePlainScalar(text: string): unknown {
  if (text.trim() === '') return text;
  const doc = parseDocument(text, { schema: 'core' });
  if (doc.errors.length > 0 || !isScalar(doc.contents) || doc.contents.type !== Scalar.PLAIN) return text;
  const value: unknown = doc.contents.value;
  return typeof value === 'number' || typeof value === 'boolean' || value === null ? value : text;
}

/**
 * Interpolates every string scalar of `doc` in place and returns the problems
 * (none when it succeeded). Aliases are skipped: they share the anchored node,
 * which is interpolated once, where it is defined.
 */
export function interpolateDocument(doc: Document, env: Env): InterpolationIssue[] {
  const issues: InterpolationIssue[] = [];
  visitNode(doc.contents, [], env, issues);
  return issues;
}

function visitNode(node: unknown, path: readonly (string | number)[], env: Env, issues: InterpolationIssue[]): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      visitNode(pair.value, [...path, key], env, issues);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => visitNode(item, [...path, index], env, issues));
  } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('$')) {
    const expansion = expandString(node.value, env);
    if (!expansion.ok) {
      for (const message of expansion.problems) issues.push({ path, message });
      return;
    }
    // An explicit tag (`!!str ${ID}`) says what the value is: leave it a string.
    const retype = expansion.wholeExpression && node.tag === undefined;
    node.value = retype ? resolvePlainScalar(expansion.text) : expansion.text;
  }
}
