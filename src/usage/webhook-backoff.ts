/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential
 * Backoff And Jitter"): the delay before retry `attempt` (1 after the first
 * failure) is uniform in [0, min(maxMs, baseMs × 2^(attempt−1))], so
 * endpoints coming back from an outage are not hit by every retry at once.
 * `random` returns [0, 1) (Math.random; a fixed one in tests). In ms.
 */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, attempt - 1), 40));
  return Math.floor(random() * (ceiling + 1));
}
