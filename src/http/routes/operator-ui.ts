import { Hono } from 'hono';
import type { UiAnswer, UiPage } from '../ui/ui-page.js';

/** The operator page's path on the admin listener; its files are under `<path>/assets/`. */
export const OPERATOR_PAGE_PATH = '/admin/ui';

/**
 * `GET /admin/ui` on the admin listener: the operator page (HTML shell,
 * script, style sheet) from memory. It needs no token to load — it holds no
 * data —, and every admin API call it makes carries the bearer token the
 * operator types in. Mounted before the admin API, whose token check would
 * otherwise answer first; a sub-path that is none of its files falls through
 * to the admin API's 404.
 */
export function operatorUi(page: UiPage): Hono {
  const app = new Hono();
  const serve = (subPath: string, ifNoneMatch: string | undefined, head: boolean): Response | undefined => {
    const answer = page.answer(subPath, ifNoneMatch, head);
    return answer === undefined ? undefined : responseOf(answer);
  };
  app.on(['GET', 'HEAD'], [OPERATOR_PAGE_PATH, `${OPERATOR_PAGE_PATH}/`], async (c, next) => {
    const response = serve('', c.req.header('if-none-match'), c.req.method === 'HEAD');
    if (response !== undefined) return response;
    await next();
  });
  app.on(['GET', 'HEAD'], `${OPERATOR_PAGE_PATH}/assets/:file`, async (c, next) => {
    const response = serve(`/assets/${c.req.param('file')}`, c.req.header('if-none-match'), c.req.method === 'HEAD');
    if (response !== undefined) return response;
    await next();
  });
  return app;
}

function responseOf(answer: UiAnswer): Response {
  const headers = new Headers();
  for (const [name, value] of answer.headers) headers.set(name, value);
  return new Response(answer.body === undefined ? null : new Uint8Array(answer.body), { status: answer.status, headers });
}
