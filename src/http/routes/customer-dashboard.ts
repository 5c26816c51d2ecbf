import type { ServerResponse } from 'node:http';
import { GatewayError } from '../../core/errors.js';
import type { Exchange } from '../exchange.js';
import type { UiAnswer, UiPage } from '../ui/ui-page.js';

/** The customer dashboard's path on the proxy listener; its files are under `<path>/assets/`. */
export const DASHBOARD_PATH = '/_quotagate/dashboard';

/**
 * Whether the request is `GET` (or `HEAD`) of the dashboard or one of its
 * files: {@link DASHBOARD_PATH} itself, with `/`, a query, or a sub-path.
 */
export function isDashboardRequest(method: string | undefined, rawUrl: string | undefined): boolean {
  if ((method !== 'GET' && method !== 'HEAD') || rawUrl === undefined || !rawUrl.startsWith(DASHBOARD_PATH)) return false;
  const next = rawUrl.charCodeAt(DASHBOARD_PATH.length);
  return Number.isNaN(next) || next === 63 /* ? */ || next === 47 /* / */;
}

/**
 * `GET /_quotagate/dashboard`: the customer page (HTML shell, script, style
 * sheet), answered by the gateway before the route table, from memory, with
 * no credential: the page signs in from the browser, sending the key the
 * caller types as `X-API-Key` to `/_quotagate/usage` and its siblings. A
 * sub-path that is none of the page's files is 404 `route_not_found`.
 */
export function customerDashboard(page: UiPage): (exchange: Exchange) => void {
  return function customerDashboardStep(exchange) {
    const url = exchange.req.url ?? DASHBOARD_PATH;
    const queryAt = url.indexOf('?');
    const subPath = (queryAt === -1 ? url : url.slice(0, queryAt)).slice(DASHBOARD_PATH.length);
    const answer = page.answer(subPath, exchange.header('if-none-match'), exchange.req.method === 'HEAD');
    if (answer === undefined) throw new GatewayError('route_not_found', 'The dashboard has no such file.');
    writeUiAnswer(exchange.res, answer, exchange.requestId);
  };
}

function writeUiAnswer(res: ServerResponse, answer: UiAnswer, requestId: string): void {
  const headers: Record<string, string> = { 'x-request-id': requestId };
  for (const [name, value] of answer.headers) headers[name] = value;
  res.writeHead(answer.status, headers);
  res.end(answer.body);
}
