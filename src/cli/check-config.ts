import type { Env } from '../config/interpolate.js';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { configWarnings, formatWarning } from '../config/warnings.js';

/** Where check-config writes; the CLI entry passes process.env and the console. */
export interface CheckConfigIo {
  readonly env: Env;
  stdout(line: string): void;
  stderr(line: string): void;
}

const USAGE = 'usage: quotagate check-config [file]   (default: $QUOTAGATE_CONFIG, else gateway.yaml)';

/**
 * `quotagate check-config [file]`: validates a config file offline (no store,
 * no upstream, no network) with the same loader `serve` uses.
 *
 * The file is `argv[0]`, else `env.QUOTAGATE_CONFIG`, else `gateway.yaml`.
 * Resolves to the exit code: 0 when valid (one summary line on stdout, and
 * each warning on stderr), 1 when not (every problem line on stderr), 2 on a
 * usage error. Never exits itself. The admin token rule reads `env` too.
 */
export async function runCheckConfig(argv: readonly string[], io: CheckConfigIo): Promise<number> {
  const [fileArgument, ...extra] = argv;
  if (extra.length > 0 || fileArgument?.startsWith('-')) {
    io.stderr(USAGE);
    return 2;
  }
  const file = fileArgument ?? (io.env.QUOTAGATE_CONFIG || 'gateway.yaml');
  try {
    const config = await loadConfigFile(file, io.env);
    const warnings = configWarnings(config);
    for (const warning of warnings) io.stderr(formatWarning(file, warning));
    const counts = [
      count(config.routes.length, 'route'),
      count(Object.keys(config.plans).length, 'plan'),
      count(config.auth.api_keys.keys.length, 'key'),
    ];
    const warned = warnings.length === 0 ? '' : `; ${count(warnings.length, 'warning')}`;
    io.stdout(`${file}: ok (${counts.join(', ')}${warned})`);
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) io.stderr(problem);
    return 1;
  }
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
