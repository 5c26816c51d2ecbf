import { parseStaticKey, type StaticKeyConfig, staticKeyId } from '../config/jwt-schema.js';
import type { JwtAlgorithm } from '../core/jwt-algorithms.js';
import { type KeyLookup, type KeySource, type VerificationKey, selectKey } from './key-source.js';

/** Public keys listed in gateway.yaml under an issuer's `keys`; no I/O. */
export class StaticKeySource implements KeySource {
  private readonly keys: readonly VerificationKey[];

  /** Throws on a key the schema would have refused (the config is validated before this runs). */
  constructor(entries: readonly StaticKeyConfig[]) {
    this.keys = entries.map((entry, index) => {
      const parsed = parseStaticKey(entry);
      if (parsed === undefined || !parsed.ok) throw new Error(`static key ${index} is invalid: ${parsed?.problem ?? 'no pem or jwk'}`);
      const pinned = entry.jwk?.alg;
      return { kid: staticKeyId(entry), alg: typeof pinned === 'string' ? pinned : undefined, ...parsed.value };
    });
  }

  keyFor(kid: string | undefined, alg: JwtAlgorithm): Promise<KeyLookup> {
    const key = selectKey(this.keys, kid, alg);
    return Promise.resolve(key === undefined ? { found: false, reason: 'unknown' } : { found: true, key });
  }
}
