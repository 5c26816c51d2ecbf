/**
 * A plan's abuse rule (`plans.<name>.abuse`): more than `denialsPerMinute`
 * denials of one subject in one calendar minute (UTC), counted across the
 * fleet, is a denial spike: `subject.denial_spike` is raised once for that
 * subject and minute, and with `action: block` the subject is refused at
 * every instance (403 `subject_blocked`) for `blockMs`.
 */
export interface AbuseRule {
  readonly denialsPerMinute: number;
  readonly action: 'notify' | 'block';
  /** How long a block lasts, in ms. */
  readonly blockMs: number;
}

/**
 * Whether a subject's denials of one minute crossed the rule with the last
 * addition: the count went from `previous` (at most the threshold) to
 * `total` (past it). Totals only grow, and each addition is atomic in the
 * fleet counter, so exactly one addition per subject and minute sees it.
 */
export function crossedSpike(rule: AbuseRule, previous: number, total: number): boolean {
  return previous <= rule.denialsPerMinute && total > rule.denialsPerMinute;
}

/** A denial spike as the flusher found it. */
export interface DenialSpike {
  readonly subject: string;
  readonly plan: string;
  readonly minuteMs: number;
  /** The fleet's denials of the subject in the minute when the spike was seen. */
  readonly denials: number;
  readonly threshold: number;
  readonly action: 'notify' | 'block';
  /** With `action: block`: when the block ends (epoch ms). */
  readonly blockedUntilMs: number | undefined;
}
