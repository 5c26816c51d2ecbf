import { ConfigError, loadConfigFile } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import type { CommandIo } from './io.js';

/**
 * The config at `file` for a CLI command, or undefined after printing every
 * problem line to stderr (the caller then exits 1). Other errors propagate.
 */
export async function loadConfigForCommand(file: string, io: CommandIo): Promise<GatewayConfig | undefined> {
  try {
    return await loadConfigFile(file, io.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) io.stderr(problem);
    return undefined;
  }
}
