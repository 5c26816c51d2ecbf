/**
 * fetch() for the pages: same origin only, no cookies sent or kept
 * (`credentials: 'omit'`), never cached, the credential in a header the
 * caller gives (never in the URL). A JSON answer comes back parsed; an
 * error answer as its problem+json `code` and `detail`.
 */

/** An answer the page can show: the parsed body, or the problem's code and detail. */
export type ApiResult<T> =
  | { readonly ok: true; readonly status: number; readonly body: T }
  | { readonly ok: false; readonly status: number; readonly code: string; readonly detail: string };

/** Requests `path` (same origin) with `headers`; a network failure is status 0, code `network_error`. */
export async function requestJson<T>(path: string, init: { method?: string; headers: Record<string, string>; body?: unknown }): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method: init.method ?? 'GET',
      headers,
      body: init.body === undefined ? null : JSON.stringify(init.body),
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    return { ok: false, status: 0, code: 'network_error', detail: 'The gateway could not be reached.' };
  }
  const text = await response.text();
  const parsed = parseJson(text);
  if (response.ok) return { ok: true, status: response.status, body: (parsed ?? {}) as T };
  const problem = (parsed ?? {}) as { code?: unknown; detail?: unknown; title?: unknown; errors?: unknown };
  const code = typeof problem.code === 'string' ? problem.code : `http_${response.status}`;
  let detail = typeof problem.detail === 'string' ? problem.detail : typeof problem.title === 'string' ? problem.title : response.statusText;
  if (Array.isArray(problem.errors)) {
    const fields = problem.errors
      .map((error: unknown) => {
        const { path: at, message } = (error ?? {}) as { path?: unknown; message?: unknown };
        return `${String(at)}: ${String(message)}`;
      })
      .join('; ');
    if (fields !== '') detail = `${detail} (${fields})`;
  }
  return { ok: false, status: response.status, code, detail };
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
