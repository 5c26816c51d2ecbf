import { ConfigError, parseConfigText } from '../../src/config/load.js';

/** The problem lines parsing `text` (labelled gateway.yaml) reports; throws if the config is accepted. */
export function configProblems(text: string, env: Record<string, string> = {}): readonly string[] {
  try {
    parseConfigText(text, 'gateway.yaml', env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('accepted');
}
