/**
 * A route whose cost is known only after the work (`cost: { reserve,
 * from_response }`): `reserve` units are checked and charged at admission,
 * and once the response ends the charge is settled to the units the
 * upstream reported in one response field, on the periods charged.
 */
export interface CostSettlement {
  /** Units checked and charged at admission; the settled charge when no valid value is reported. */
  readonly reserve: number;
  /** Where the upstream reports the units: a response header, or a trailer read at the response's end. */
  readonly from: 'header' | 'trailer';
  /** The field's name, lowercase (as undici parses names). */
  readonly field: string;
}

/**
 * Largest reported value taken, in units: the largest limit a plan may set
 * (10^12). A larger value is treated as malformed (the charge stays at the
 * reserve): it says more than any quota could hold, so it is a fault of the
 * upstream's, not usage.
 */
const MAX_REPORTED_UNITS = 1_000_000_000_000;

/** Digits only: no sign, no fraction, no exponent, no spaces inside. */
const UNITS = /^[0-9]{1,13}$/;

/** Where a settled charge came from: the reported value, or the reserve because none (`missing`) or no valid one (`malformed`) was reported. */
export type SettlementSource = 'reported' | 'missing' | 'malformed';

/** What a request's charge settles to. */
export interface SettledUnits {
  readonly units: number;
  readonly source: SettlementSource;
}

/**
 * The units a response field reports, as undici gives it (absent, one
 * value, or several for a repeated field): a non-negative integer of at most
 * MAX_REPORTED_UNITS, written in decimal digits. Anything else (a repeated
 * field, a sign, a fraction, spaces, a larger value) settles at `reserve`.
 */
export function settledUnitsOf(value: string | readonly string[] | undefined, reserve: number): SettledUnits {
  if (value === undefined) return { units: reserve, source: 'missing' };
  if (typeof value !== 'string' || !UNITS.test(value)) return { units: reserve, source: 'malformed' };
  const units = Number(value);
  if (units > MAX_REPORTED_UNITS) return { units: reserve, source: 'malformed' };
  return { units, source: 'reported' };
}
