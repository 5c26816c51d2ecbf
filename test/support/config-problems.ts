import { ConfigError, parseConfigText } from '../../src/config/load.js';

/** The smallest valid gateway.yaml: one upstream, one route, one unlimited plan. */
export const MINIMAL_CONFIG = `
upstreams:
  demo:
    url: http://127.0.0.1:3000
routes:
  - name: api
    path_prefix: /api
    upstream: demo
plans:
  free: {}
`;

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
