import type { Denial, PolicyState } from './decision.js';

/**
 * The denial for `states` where `violated[i]` says whether policy i had no
 * room. Shared by every limiter so they word denials identically: the reason
 * is `quota` if any violated policy is a quota, and the caller may retry once
 * the latest of the violated policies has reset — or, when one of them is a
 * lifetime quota, retryAfterSeconds is 0: it is freed by a release, not by time.
 */
export function denialOf(states: readonly PolicyState[], violated: readonly boolean[]): Denial {
  const violatedStates = states.filter((_, i) => violated[i]);
  return {
    allowed: false,
    reason: violatedStates.some((state) => state.kind === 'quota') ? 'quota' : 'window',
    violated: violatedStates.map((state) => state.name),
    // A violated lifetime quota (resetSeconds 0) never resets: no wait helps, so 0.
    retryAfterSeconds: violatedStates.some((state) => state.resetSeconds === 0) ? 0 : Math.max(...violatedStates.map((state) => state.resetSeconds)),
    policies: states,
  };
}
