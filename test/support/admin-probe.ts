import { request } from 'undici';
import { within } from './within.js';

/** What `/readyz` answered. */
export interface Readyz {
  readonly status: number;
  readonly body: { status: string; store: string; reason?: string; warnings?: string[] };
}

/** One bounded GET of `/readyz`. */
export async function readyz(adminUrl: string): Promise<Readyz> {
  return within(
    (async () => {
      const res = await request(`${adminUrl}/readyz`);
      return { status: res.statusCode, body: (await res.body.json()) as Readyz['body'] };
    })(),
    3_000,
    'GET /readyz',
  );
}

/**
 * Asks `/readyz` until `accept` holds, at most `timeoutMs` (a bounded wait
 * for an awaited state, not a timing assertion); rejects with the last answer.
 */
export async function readyzUntil(adminUrl: string, accept: (answer: Readyz) => boolean, timeoutMs = 10_000): Promise<Readyz> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await readyz(adminUrl);
    if (accept(answer)) return answer;
    if (Date.now() > deadline) throw new Error(`/readyz never reached the awaited state; last: ${answer.status} ${JSON.stringify(answer.body)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The value of the sample `series` (`name{label="v",…}` exactly as exposed, or a bare name) in `/metrics`; undefined when absent. */
export async function metricSample(adminUrl: string, series: string): Promise<number | undefined> {
  const text = await within(request(`${adminUrl}/metrics`).then((res) => res.body.text()), 3_000, 'GET /metrics');
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
