import type { Env } from './interpolate.js';

/** Fewest characters of an admin token when the admin listener is reachable beyond loopback. */
const MIN_EXPOSED_ADMIN_TOKEN_LENGTH = 32;

/**
 * Admin tokens that quotagate's examples have shipped (config/,
 * docker-compose.yml, config/kubernetes; test/unit/admin-token.test.ts
 * keeps this list in step with them). Anyone can read them, so they are
 * refused as tokens wherever the admin listener is reachable.
 */
export const PLACEHOLDER_ADMIN_TOKENS: ReadonlySet<string> = new Set(['change-me-to-a-long-random-token']);

/** Whether `host` binds only the loopback interface. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return bare === 'localhost' || bare === '::1' || /^127(\.\d{1,3}){3}$/.test(bare);
}

/** What the admin token rule needs from the config. */
interface AdminSettings {
  readonly listeners: { readonly admin: { readonly host: string } };
  readonly admin: { readonly token_env?: string | undefined };
}

/**
 * Why the admin token in `env` cannot be used, as `{ path, message }`, or
 * undefined when it can. With the admin listener bound beyond loopback (a
 * pod IP, `0.0.0.0`), a token the API is on with must be at least
 * MIN_EXPOSED_ADMIN_TOKEN_LENGTH characters and not a shipped placeholder.
 * An unset or empty token (the API is off) and a loopback listener pass.
 * The message never repeats the token.
 */
export function adminTokenProblem(config: AdminSettings, env: Env): { path: string; message: string } | undefined {
  const variable = config.admin.token_env;
  if (variable === undefined) return undefined;
  const token = env[variable];
  const host = config.listeners.admin.host;
  if (token === undefined || token === '' || isLoopbackHost(host)) return undefined;
  const exposed = `the admin listener is bound to ${host}, beyond loopback`;
  const advice = 'set a random one (e.g. openssl rand -hex 32)';
  if (PLACEHOLDER_ADMIN_TOKENS.has(token)) {
    return { path: 'admin.token_env', message: `${variable} holds a placeholder token from quotagate's examples, and ${exposed}; ${advice}` };
  }
  if (token.length < MIN_EXPOSED_ADMIN_TOKEN_LENGTH) {
    return {
      path: 'admin.token_env',
      message: `${variable} holds ${token.length} characters, and ${exposed}, which needs at least ${MIN_EXPOSED_ADMIN_TOKEN_LENGTH}; ${advice}`,
    };
  }
  return undefined;
}
