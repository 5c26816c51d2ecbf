import type { GatewayConfig } from './schema.js';
import { formatPath } from './format-issues.js';

/** Something a valid config allows but that is rarely meant: check-config prints it, start-up logs it. */
export interface ConfigWarning {
  /** Where in the file, as problems name it (`proxy.trusted_proxies[0]`). */
  readonly path: string;
  readonly message: string;
}

/**
 * The warnings of a valid config, in file order of their sections:
 * - a trusted proxy block of prefix length 0 (`0.0.0.0/0`, `::/0`): every
 *   peer's X-Forwarded-For is believed, so any client picks its anonymous
 *   subject and its X-Forwarded-Proto / -Host;
 * - an `auth: none` route whose anonymous plan limits nothing it charges;
 * - a JWT issuer without `subject_prefix` while routes also charge API-key
 *   subjects or anonymous `ip:` subjects, which a token's subject could equal.
 */
export function configWarnings(config: GatewayConfig): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  config.proxy.trusted_proxies.forEach((block, index) => {
    const bits = block.split('/')[1];
    if (bits !== undefined && Number(bits) === 0) {
      warnings.push({
        path: formatPath(['proxy', 'trusted_proxies', index]),
        message: `${block} trusts every peer: any client can set X-Forwarded-For (and so its anonymous subject), X-Forwarded-Proto and X-Forwarded-Host`,
      });
    }
  });
  const anonymousPlan = config.plans[config.auth.anonymous_plan];
  config.routes.forEach((route, index) => {
    if (route.auth !== 'none' || anonymousPlan === undefined) return;
    const windows = Object.values(anonymousPlan.limits).some((limit) => limit !== undefined);
    const quota = route.quota !== undefined && anonymousPlan.quotas[route.quota] !== undefined;
    if (!windows && !quota) {
      warnings.push({
        path: formatPath(['routes', index, 'auth']),
        message: `route "${route.name}" uses auth: none, and plan "${config.auth.anonymous_plan}" has no windows: anonymous callers are unlimited`,
      });
    }
  });
  const keySubjects = config.routes.some((route) => route.auth === 'api_key' || route.auth === 'any');
  const ipSubjects = config.routes.some((route) => route.auth === 'none');
  if (keySubjects || ipSubjects) {
    const others = [keySubjects ? 'API-key subjects' : undefined, ipSubjects ? 'anonymous "ip:" subjects' : undefined].filter(Boolean).join(' and ');
    config.auth.jwt.issuers.forEach((issuer, index) => {
      if (issuer.subject_prefix !== undefined) return;
      warnings.push({
        path: formatPath(['auth', 'jwt', 'issuers', index, 'subject_prefix']),
        message: `not set, and routes also charge ${others}: a token whose subject equals one shares its limits; set one, e.g. "jwt:"`,
      });
    });
  }
  return warnings;
}

/** A warning as one line: `<file>: <path>: warning: <message>`. */
export function formatWarning(fileLabel: string, warning: ConfigWarning): string {
  return `${fileLabel}: ${warning.path}: warning: ${warning.message}`;
}
