/** A UTF-16 surrogate without its pair: JSON allows `"\ud800"`, but it has no UTF-8 form. */
const LONE_SURROGATE_SOURCE = '[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|(?<![\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]';
const LONE_SURROGATE = new RegExp(LONE_SURROGATE_SOURCE);
const EVERY_LONE_SURROGATE = new RegExp(LONE_SURROGATE_SOURCE, 'g');

/** Whether `value` holds a lone surrogate, i.e. is not Unicode text (`String.prototype.isWellFormed`, ES2024). */
export function hasLoneSurrogate(value: string): boolean {
  return LONE_SURROGATE.test(value);
}

/** `value` with each lone surrogate replaced by U+FFFD (`String.prototype.toWellFormed`, ES2024). */
export function toWellFormedText(value: string): string {
  return value.replace(EVERY_LONE_SURROGATE, '\uFFFD');
}
