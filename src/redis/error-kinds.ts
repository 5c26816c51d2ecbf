/**
 * The kinds a failed Redis call is sorted into, for the `kind` label of
 * `quotagate_store_errors_total`, the readiness probe's `result`, and the log.
 * docs/operations.md documents each; a new kind needs a row there.
 */
export const REDIS_ERROR_KINDS = [
  'timeout',
  'connection',
  'oom',
  'noperm',
  'auth',
  'readonly',
  'loading',
  'busy',
  'redirection',
  'script',
  'error',
] as const;

export type RedisErrorKind = (typeof REDIS_ERROR_KINDS)[number];

/** What each kind means to an operator: the cause a log line names. */
const REDIS_ERROR_CAUSES: Readonly<Record<RedisErrorKind, string>> = {
  timeout: 'Redis did not answer within store.redis.command_timeout_ms (slow, overloaded, or the network drops packets)',
  connection: 'no connection to Redis (down, unreachable, or the connection dropped)',
  oom: "Redis refuses writes: its used memory is above maxmemory and maxmemory-policy is noeviction (raise maxmemory or find what fills it; an evicting policy would drop counters)",
  noperm: 'the Redis ACL user may not run a command or touch a key the gateway needs (docs/operations.md lists them)',
  auth: 'Redis refused the credentials (NOAUTH or WRONGPASS: check the password in store.redis)',
  readonly: 'the node written to is a read-only replica (a failover the client has not followed yet)',
  loading: 'Redis is loading its dataset after a restart and answers nothing until done',
  busy: 'Redis is busy running a long script and answers nothing until it ends',
  redirection: 'a Redis Cluster kept redirecting the call (MOVED, ASK, TRYAGAIN) past the retry limit',
  script: 'a script failed on Redis or answered what its header does not describe (a bug, or scripts of another version)',
  error: 'an unrecognised Redis error',
};

/**
 * Sorts a failed Redis call into a kind. Redis reports an error inside a
 * script (a refused command, a write at maxmemory) as an error of the script
 * (`… script: <sha>, on @user_script:<line>`), so the cause is looked for
 * before the script: an OOM or a refused command inside a script is `oom` or
 * `noperm`, not `script`.
 */
export function classifyRedisError(error: unknown): RedisErrorKind {
  const message = error instanceof Error ? error.message : String(error);
  // ioredis wraps the last reply: "Too many Cluster redirections. Last error: …".
  if (/^Too many Cluster redirections/.test(message)) return 'redirection';
  if (/timed out/i.test(message)) return 'timeout';
  if (/\bOOM command not allowed|^OOM\b/.test(message)) return 'oom';
  if (/^NOPERM\b|can't run this command or subcommand|has no permissions to/.test(message)) return 'noperm';
  if (/^(NOAUTH|WRONGPASS)\b/.test(message)) return 'auth';
  if (/^READONLY\b/.test(message)) return 'readonly';
  if (/^LOADING\b/.test(message)) return 'loading';
  if (/^BUSY\b/.test(message)) return 'busy';
  if (/connection|stream isn't writeable|offline queue|ECONNREFUSED|ECONNRESET|EPIPE|CLUSTERDOWN|Cluster is ended/i.test(message)) {
    return 'connection';
  }
  if (/ERR .*script|user_script|unexpected reply from/i.test(message)) return 'script';
  return 'error';
}

/**
 * Logs the first error of each kind with its cause, and not the ones after
 * it: a Redis at maxmemory fails every request the same way, and one line
 * says so. `forget()` (the store answered again) starts a new episode, whose
 * first error of each kind is logged again.
 */
export class FirstErrorOfKindLog {
  readonly #logged = new Set<RedisErrorKind>();

  constructor(private readonly write: (kind: RedisErrorKind, cause: string, error: unknown) => void) {}

  note(kind: RedisErrorKind, error: unknown): void {
    if (this.#logged.has(kind)) return;
    this.#logged.add(kind);
    this.write(kind, REDIS_ERROR_CAUSES[kind], error);
  }

  forget(): void {
    this.#logged.clear();
  }
}
