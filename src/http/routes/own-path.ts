/**
 * Whether a request target is exactly `path` (one of the gateway's own
 * `/_quotagate/…` endpoints), with or without a query: `/_quotagate/usage`
 * and `/_quotagate/usage?x=1` are, `/_quotagate/usagex` and
 * `/_quotagate/usage/history` are not.
 */
export function isOwnPath(rawUrl: string | undefined, path: string): boolean {
  if (rawUrl === undefined || !rawUrl.startsWith(path)) return false;
  return rawUrl.length === path.length || rawUrl.charCodeAt(path.length) === 63 /* ? */;
}
