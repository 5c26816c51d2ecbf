/** Numbers, durations and instants as the pages print them (en-US digits, UTC times). */

const integer = new Intl.NumberFormat('en-US');

/** 12,345 */
export function count(value: number): string {
  return integer.format(value);
}

/** 42 %, 99.5 % (at most one decimal) */
export function percent(value: number): string {
  return `${Math.round(value * 10) / 10} %`;
}

/** A delay in seconds as people say it: `45 s`, `29 min`, `3 h 5 min`, `12 days`. */
export function duration(seconds: number): string {
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86_400) {
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.round((seconds % 3600) / 60);
    return minutes === 0 ? `${hours} h` : `${hours} h ${minutes} min`;
  }
  const days = Math.round(seconds / 86_400);
  return days === 1 ? '1 day' : `${days} days`;
}

/** An RFC 3339 instant as `2026-06-15 11:00 UTC`. */
export function instant(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** A window's name for people: `hour` → `Per hour`, `search.month` → `search, per month`. */
export function policyLabel(name: string, window: string, kind: 'window' | 'quota'): string {
  const period = window === 'lifetime' ? 'in total' : `per ${window}`;
  if (kind === 'window') return `Requests ${period}`;
  const metric = name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : name;
  return `${metric} ${period}`;
}
