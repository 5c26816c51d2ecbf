import { requestJson, type ApiResult } from '../shared/api.js';

/** The admin API as the operator page calls it: every request carries `Authorization: Bearer <token>`. */
export interface AdminClient {
  get<T>(path: string): Promise<ApiResult<T>>;
  post<T>(path: string, body?: unknown): Promise<ApiResult<T>>;
  put<T>(path: string, body: unknown): Promise<ApiResult<T>>;
}

export function adminClient(token: string): AdminClient {
  const headers = { authorization: `Bearer ${token}` };
  return {
    get: (path) => requestJson(path, { headers }),
    post: (path, body) => requestJson(path, { method: 'POST', headers, body: body ?? {} }),
    put: (path, body) => requestJson(path, { method: 'PUT', headers, body }),
  };
}

/** `/admin/subjects/<id>…` with the id encoded. */
export function subjectPath(id: string, rest = ''): string {
  return `/admin/subjects/${encodeURIComponent(id)}${rest}`;
}

/** A failed call as one line: `detail (code)`. */
export function failure(result: { readonly code: string; readonly detail: string }): string {
  return `${result.detail} (${result.code})`;
}
