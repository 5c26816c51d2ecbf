/**
 * The arithmetic of the report, kept pure so it is tested
 * (test/unit/bench-stats.test.ts): medians of trials and ratios to the bare
 * proxy, both undefined rather than NaN when there is nothing to compute.
 */

/** Median of the finite values; undefined when there are none. An even count averages the middle two. */
export function median(values: readonly (number | undefined)[]): number | undefined {
  const finite = values.filter((value): value is number => value !== undefined && Number.isFinite(value)).sort((a, b) => a - b);
  if (finite.length === 0) return undefined;
  const middle = finite.length >> 1;
  return finite.length % 2 === 1 ? finite[middle]! : (finite[middle - 1]! + finite[middle]!) / 2;
}

/** `value / reference`; undefined when either is unknown or the reference is not positive. */
export function ratioTo(value: number | undefined, reference: number | undefined): number | undefined {
  if (value === undefined || reference === undefined || !Number.isFinite(value) || !Number.isFinite(reference) || reference <= 0) return undefined;
  return value / reference;
}

/** `value − reference`; undefined when either is unknown. */
export function difference(value: number | undefined, reference: number | undefined): number | undefined {
  if (value === undefined || reference === undefined || !Number.isFinite(value) || !Number.isFinite(reference)) return undefined;
  return value - reference;
}

/** CPU microseconds per request from CPU milliseconds over `requests`; undefined when either is unknown or no request completed. */
export function cpuUsPerRequest(cpuMs: number | undefined, requests: number): number | undefined {
  if (cpuMs === undefined || !(requests > 0)) return undefined;
  return (cpuMs * 1000) / requests;
}
