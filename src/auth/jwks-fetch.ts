import { request } from 'undici';

/** Largest JWKS document read; a key set is a few KiB, so anything near this is not one. */
const MAX_JWKS_BYTES = 1024 * 1024;

/**
 * Fetches and parses a JSON Web Key Set document. Rejects on any failure:
 * the whole exchange exceeding `timeoutMs`, a status other than 200 (a
 * redirect is not followed), a body over MAX_JWKS_BYTES, or invalid JSON.
 */
export type JwksFetcher = (url: string, timeoutMs: number) => Promise<unknown>;

/** The JwksFetcher on undici, one connection per fetch (they are minutes apart). */
export const fetchJwksDocument: JwksFetcher = async (url, timeoutMs) => {
  const response = await request(url, {
    method: 'GET',
    headers: { accept: 'application/jwk-set+json, application/json' },
    signal: AbortSignal.timeout(timeoutMs),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    reset: true,
  });
  if (response.statusCode !== 200) {
    await response.body.dump();
    throw new Error(`the JWKS endpoint answered ${response.statusCode}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    // Throwing out of the loop ends the iteration, which destroys the body.
    if (size > MAX_JWKS_BYTES) throw new Error(`the JWKS document is larger than ${MAX_JWKS_BYTES} bytes`);
    chunks.push(buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
};
