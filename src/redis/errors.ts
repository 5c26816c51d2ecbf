/**
 * Sorts a failed Redis call into a `kind` for `quotagate_store_errors_total`:
 * `timeout` (no reply within command_timeout_ms), `connection` (not connected,
 * or the connection dropped), `script` (a script error reply), else `error`.
 */
export function classifyRedisError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/timed out/i.test(message)) return 'timeout';
  if (/connection|stream isn't writeable|offline queue|ECONNREFUSED|ECONNRESET|EPIPE|CLUSTERDOWN/i.test(message)) {
    return 'connection';
  }
  if (/ERR .*script|user_script/i.test(message)) return 'script';
  return 'error';
}
