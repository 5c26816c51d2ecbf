/**
 * The fields of a JSON object sent as text (a pub/sub message between
 * gateway instances), or undefined when `text` is not JSON or not an object:
 * such messages are ignored by their readers, never thrown.
 */
export function jsonObjectFields(text: string): Readonly<Record<string, unknown>> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return value as Record<string, unknown>;
}
