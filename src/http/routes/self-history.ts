import { authenticateCaller, type CallerAuthentication, type CredentialMode } from '../../auth/caller-authentication.js';
import { isOwnPath } from './own-path.js';
import { historyCsv, type HistoryPage, type HistoryQuery } from '../../admin/usage-history.js';
import { countingIdOf } from '../../core/counting-id.js';
import { GatewayError } from '../../core/errors.js';
import type { Plan } from '../../core/plan.js';
import type { Exchange } from '../exchange.js';
import { credentialsOf, type IdentifyOptions } from '../middleware/identify.js';
import { writeJson } from '../node-response.js';
import { historyQuery } from './admin-api/validation.js';
import { historyView } from './admin-api/views.js';

/** The path of the caller's own usage history on the proxy listener, answered before the route table. */
const SELF_HISTORY_PATH = '/_quotagate/usage/history';

/** Whether the request is `GET` (or `HEAD`) of {@link SELF_HISTORY_PATH}, with or without a query. */
export function isSelfHistoryRequest(method: string | undefined, rawUrl: string | undefined): boolean {
  return (method === 'GET' || method === 'HEAD') && isOwnPath(rawUrl, SELF_HISTORY_PATH);
}

export interface SelfHistoryOptions extends CallerAuthentication {
  readonly clientAddress: IdentifyOptions['clientAddress'];
  /** The plans: under `limit_by: key`, a key's caller reads that key's history. */
  readonly plans: ReadonlyMap<string, Pick<Plan, 'limitByKey'>>;
  /** Reads a page of the ledger; absent without a database (503 `usage_unavailable`). */
  readonly history: ((subject: string, query: HistoryQuery) => Promise<HistoryPage>) | undefined;
}

/**
 * `GET /_quotagate/usage/history`: the caller's own history from the usage
 * ledger, as the admin API's `/admin/subjects/{id}/usage/history` answers
 * it (same query, JSON or CSV). Authenticated like `/_quotagate/usage`;
 * charges nothing. A database query, so never on the proxied path.
 */
export function selfHistory(options: SelfHistoryOptions): (exchange: Exchange) => Promise<void> {
  const mode: CredentialMode = options.authenticators.any !== undefined ? 'any' : 'api_key';
  return async function selfHistoryStep(exchange) {
    const { identity } = await authenticateCaller(credentialsOf(exchange, options.clientAddress), mode, options, SELF_HISTORY_PATH);
    exchange.identity = identity;
    const url = exchange.req.url ?? SELF_HISTORY_PATH;
    const search = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
    const parsed = historyQuery.safeParse(Object.fromEntries(search));
    if (!parsed.success) {
      throw new GatewayError('bad_request', `The history query is not valid at ${String(parsed.error.issues[0]?.path[0] ?? 'query')}.`);
    }
    // `key` is the admin API's: a caller's own history is that of the credentials it presents.
    if (parsed.data.key !== undefined) throw new GatewayError('bad_request', 'The history query is not valid at key.');
    if (options.history === undefined) throw new GatewayError('usage_unavailable', 'This gateway keeps no usage ledger.');
    const query = parsed.data;
    const plan = options.plans.get(identity.plan);
    const countingId = plan === undefined ? identity.subject : countingIdOf(plan, identity);
    const keyId = countingId === identity.subject ? {} : { key_id: identity.keyId };
    let page: HistoryPage;
    try {
      page = await options.history(countingId, {
        granularity: query.granularity,
        fromMs: query.from?.getTime(),
        toMs: query.to?.getTime(),
        limit: query.limit ?? 100,
        cursor: query.cursor,
      });
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw new GatewayError('usage_unavailable', 'The usage ledger did not answer; retry later.', {}, [['retry-after', '1']]);
    }
    const headers: Array<readonly [string, string]> = [
      ['cache-control', 'no-store'],
      ['x-request-id', exchange.requestId],
    ];
    if (exchange.header('accept')?.includes('text/csv') === true) {
      const text = historyCsv(identity.subject, page.items);
      exchange.res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store', 'x-request-id': exchange.requestId });
      exchange.res.end(text);
      return;
    }
    writeJson(
      exchange.res,
      200,
      { subject: identity.subject, ...keyId, granularity: query.granularity, items: page.items.map(historyView), next_cursor: page.nextCursor ?? null },
      headers,
    );
  };
}
