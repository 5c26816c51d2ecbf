import { type ErrorCode, ERROR_STATUS, titleOf } from './errors.js';

/** The IANA-registered problem type for quota and rate-limit denials (RFC 9457 registry). */
const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded';

/** Problem types of quotagate's own errors: this base followed by the code. */
const PROBLEM_TYPE_BASE = 'https://quotagate.dev/problems/';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** An RFC 9457 problem details body with quotagate's stable `code`. */
export interface ProblemBody {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly code: ErrorCode;
  readonly detail: string;
  readonly [extension: string]: unknown;
}

export function problemBody(
  code: ErrorCode,
  detail: string,
  extensions: Readonly<Record<string, unknown>> = {},
  status: number = ERROR_STATUS[code],
): ProblemBody {
  const type =
    code === 'rate_limited' || code === 'quota_exceeded' ? QUOTA_EXCEEDED_TYPE : PROBLEM_TYPE_BASE + code;
  // Standard members first and never overridden by an extension of the same name.
  return { type, title: titleOf(code), status, code, detail, ...withoutStandard(extensions) };
}

const STANDARD_MEMBERS = new Set(['type', 'title', 'status', 'code', 'detail', 'instance']);

function withoutStandard(extensions: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(extensions)) {
    if (!STANDARD_MEMBERS.has(name)) result[name] = value;
  }
  return result;
}
