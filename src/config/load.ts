import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { adminTokenProblem } from './admin-token.js';
import { formatIssues, formatPath, plainIssueMessage } from './format-issues.js';
import { interpolateDocument, type Env } from './interpolate.js';
import { configSchema, type GatewayConfig } from './schema.js';
import { webhookSecretProblems } from './webhook-secrets.js';

/**
 * Loading gateway.yaml: read → YAML syntax → `${ENV}` interpolation → schema
 * (with its cross-field rules) → the admin token and webhook secret rules → deep freeze. Each stage reports every problem
 * it finds, and a later stage runs only when the earlier ones found none.
 */

/**
 * A configuration that cannot be used. `problems` holds one complete line per
 * problem, `<file>: <path>: <problem>`; `message` is those lines joined by
 * newlines, ready to print.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(problems.join('\n'));
    this.problems = Object.freeze([...problems]);
  }
}

/** Why a file could not be read, without the path Node repeats in its messages. */
const READ_FAILURES: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'a parent is not a directory',
};

/**
 * Reads and validates the file at `path`, labelling every problem with `path`
 * exactly as given. Rejects with a ConfigError, never with another error.
 */
export async function loadConfigFile(path: string, env: Env): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = (code !== undefined ? READ_FAILURES[code] : undefined) ?? (error as Error).message;
    throw new ConfigError([`${path}: cannot read: ${reason}`]);
  }
  return parseConfigText(text, path, env);
}

/**
 * Validates the YAML `text` of a config file; `fileLabel` names it in errors.
 * Pure: the only input from outside is `env`. Returns a deep-frozen config
 * with every default filled in; throws a ConfigError listing every problem.
 */
export function parseConfigText(text: string, fileLabel: string, env: Env): GatewayConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, schema: 'core', uniqueKeys: true });
  // Only the first syntax error: the ones after it are mostly its echoes.
  const syntaxError = doc.errors[0];
  if (syntaxError !== undefined) {
    const { line, col } = lineCounter.linePos(syntaxError.pos[0]);
    throw new ConfigError([`${fileLabel}: line ${line}, column ${col}: invalid YAML: ${syntaxError.message}`]);
  }

  const interpolationIssues = interpolateDocument(doc, env);
  if (interpolationIssues.length > 0) {
    throw new ConfigError(interpolationIssues.map((issue) => `${fileLabel}: ${formatPath(issue.path)}: ${issue.message}`));
  }

  let data: unknown;
  try {
    data = doc.toJS();
  } catch (error) {
    // yaml refuses documents whose aliases expand too far (a "billion laughs").
    throw new ConfigError([`${fileLabel}: (root): invalid YAML: ${(error as Error).message}`]);
  }

  const result = configSchema.safeParse(data, { error: plainIssueMessage });
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues, fileLabel));
  // The one rule that reads the environment beyond ${…}: the admin token the file names.
  const adminProblem = adminTokenProblem(result.data, env);
  if (adminProblem !== undefined) throw new ConfigError([`${fileLabel}: ${adminProblem.path}: ${adminProblem.message}`]);
  // And the webhook secrets it names: a gateway that could not sign does not start.
  const secretProblems = webhookSecretProblems(result.data, env);
  if (secretProblems.length > 0) throw new ConfigError(secretProblems.map((problem) => `${fileLabel}: ${problem.path}: ${problem.message}`));
  return deepFreeze(result.data);
}

/** Freezes `value` and everything reachable from it; returns it for chaining. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
