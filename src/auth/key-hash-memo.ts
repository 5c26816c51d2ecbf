import { hashApiKey, isWellFormedApiKey } from '../core/api-key.js';

/** Presented keys remembered at most; the oldest is forgotten first. About 150 bytes each. */
const KEY_HASH_MEMO_ENTRIES = 10_000;

/**
 * The SHA-256 of well-formed keys recently presented, so a hot key skips
 * the format regex, the checksum and the hash on every request after its
 * first. It holds only what the key store is then asked for (the hash),
 * never a record: revocation and expiry are still judged on every request
 * from the key store's answer. Bounded; a flood of fresh well-formed keys
 * only cycles it.
 */
export class KeyHashMemo {
  readonly #hashes = new Map<string, string>();

  constructor(
    private readonly prefix: string,
    private readonly maxEntries = KEY_HASH_MEMO_ENTRIES,
  ) {}

  /** Keys remembered now (at most the bound). */
  get size(): number {
    return this.#hashes.size;
  }

  /** The hash of `key` when it is well-formed with this prefix, else undefined. */
  hashOf(key: string): string | undefined {
    const known = this.#hashes.get(key);
    if (known !== undefined) return known;
    if (!isWellFormedApiKey(key, this.prefix)) return undefined;
    const hash = hashApiKey(key);
    if (this.#hashes.size >= this.maxEntries) this.#hashes.delete(this.#hashes.keys().next().value!);
    this.#hashes.set(key, hash);
    return hash;
  }
}
