import type { ServerResponse } from 'node:http';
import type { GatewayError } from '../core/errors.js';
import { PROBLEM_CONTENT_TYPE, problemBody } from '../core/problem.js';
import type { HeaderPair } from '../core/ratelimit-headers.js';

/**
 * Answers the gateway writes itself on the proxy listener (node:http, no
 * framework): a JSON body and problem+json. Both set Content-Length and
 * write in one call.
 */

/** Writes `body` as JSON with `status` and `headers` (lowercase or canonical names). */
export function writeJson(res: ServerResponse, status: number, body: unknown, headers: readonly HeaderPair[]): void {
  writeBody(res, status, 'application/json', JSON.stringify(body), headers);
}

/**
 * The one place a proxy-listener error becomes an HTTP response: RFC 9457
 * problem+json with the error's status, code and extensions, plus
 * `extraHeaders` (the rate-limit headers of a limited route, the request
 * id) and then the error's own headers, which win on a clash.
 */
export function writeProblem(res: ServerResponse, error: GatewayError, extraHeaders: readonly HeaderPair[]): void {
  const body = problemBody(error.code, error.detail, error.extensions, error.status);
  const headers: HeaderPair[] = [['cache-control', 'no-store'], ...extraHeaders, ...error.headers];
  writeBody(res, error.status, PROBLEM_CONTENT_TYPE, JSON.stringify(body), headers);
}

function writeBody(res: ServerResponse, status: number, contentType: string, text: string, headers: readonly HeaderPair[]): void {
  const record: Record<string, string> = { 'content-type': contentType };
  for (const [name, value] of headers) record[name.toLowerCase()] = value;
  record['content-length'] = String(Buffer.byteLength(text));
  res.writeHead(status, record);
  res.end(text);
}
