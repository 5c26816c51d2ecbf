import { webhookSecretProblem } from '../core/webhook-signature.js';
import type { Env } from './interpolate.js';

/** What the webhook secret rule needs from the config. */
interface WebhookSettings {
  readonly events: { readonly webhooks: ReadonlyArray<{ readonly secret_env: string }> };
}

/**
 * Why the secrets the `events.webhooks` entries name cannot be used, one
 * `{ path, message }` per endpoint: the variable is unset or empty, or holds
 * no Standard Webhooks secret (`whsec_` and 24–64 bytes of base64). Checked at
 * load (start, reload, check-config) so a gateway never starts unable to
 * sign. A message names the variable, never its value.
 */
export function webhookSecretProblems(config: WebhookSettings, env: Env): Array<{ path: string; message: string }> {
  const problems: Array<{ path: string; message: string }> = [];
  config.events.webhooks.forEach((webhook, index) => {
    const path = `events.webhooks[${index}].secret_env`;
    const secret = env[webhook.secret_env];
    if (secret === undefined || secret === '') {
      problems.push({ path, message: `${webhook.secret_env} is unset or empty; it must hold the endpoint's secret (whsec_<base64>)` });
      return;
    }
    const problem = webhookSecretProblem(secret);
    if (problem !== undefined) problems.push({ path, message: `${webhook.secret_env}: ${problem}` });
  });
  return problems;
}

/** The secret of each `events.webhooks` entry, in order, from `env` (after webhookSecretProblems found none). */
export function webhookSecrets(config: WebhookSettings, env: Env): string[] {
  return config.events.webhooks.map((webhook) => env[webhook.secret_env] ?? '');
}
