import { z } from 'zod';
import { isPathRefusal, normalizeRequestPath } from '../core/request-path.js';

/**
 * `routes[].path_prefix`: a path in the form requests are matched in
 * (core/request-path.ts), so that every prefix can match. A prefix the path
 * rule would refuse (`/a;v=1`, `/a/../b`, `/a%2Fb`) or rewrite (`/%61pi`)
 * is an error naming the form to write instead.
 */
export const pathPrefixSchema = z
  .string()
  .regex(/^\/[^?#\s]*$/, { error: 'expected a path starting with "/"' })
  .superRefine((prefix, ctx) => {
    if (!prefix.startsWith('/')) return;
    const normalized = normalizeRequestPath(prefix);
    if (isPathRefusal(normalized)) {
      ctx.addIssue({ code: 'custom', message: `never matches: the gateway refuses a request path that ${normalized.refused}` });
    } else if (normalized !== prefix) {
      ctx.addIssue({ code: 'custom', message: `requests are matched in normalized form; write "${normalized}"` });
    }
  });
