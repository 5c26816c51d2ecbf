import { generateApiKey, hashApiKey, isWellFormedApiKey, KEY_PREFIX_PATTERN } from '../core/api-key.js';
import { KEYS_ADMIN_USAGE, runKeysAdmin } from './admin-commands.js';
import type { CommandIo } from './io.js';

const USAGE = `usage:
  quotagate keys generate [--prefix qg]   print a new key and the hash to put in gateway.yaml
  quotagate keys hash <key> [--prefix qg] print the SHA-256 to put in gateway.yaml ("-" reads the key from stdin)
${KEYS_ADMIN_USAGE}`;

/**
 * `quotagate keys …`: operator helpers for file-backed keys. The plain key is
 * printed only by `generate`, once; gateway.yaml holds only its hash.
 */
export async function runKeys(argv: readonly string[], io: CommandIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'create' || command === 'list' || command === 'revoke') return runKeysAdmin(command, rest, io);
  const prefixAt = rest.indexOf('--prefix');
  const prefix = prefixAt === -1 ? 'qg' : rest[prefixAt + 1];
  // Without --prefix (prefixAt -1) every argument is positional: -1 + 1 must not drop the first.
  const positional = prefixAt === -1 ? rest : rest.filter((_, i) => i !== prefixAt && i !== prefixAt + 1);
  if (prefix === undefined || !KEY_PREFIX_PATTERN.test(prefix)) {
    io.stderr('keys: --prefix takes 2–16 lowercase letters or digits, starting with a letter');
    return 2;
  }
  if (command === 'generate' && positional.length === 0) {
    const key = generateApiKey(prefix);
    const hash = hashApiKey(key);
    io.stdout(`key:  ${key}`);
    io.stdout(`hash: ${hash}`);
    io.stdout('');
    io.stdout('The key is shown this once. Add its hash under auth.api_keys.keys in gateway.yaml:');
    io.stdout(`  - { id: ${hash.slice(0, 12)}, hash: ${hash}, subject: <subject>, plan: <plan> }`);
    return 0;
  }
  if (command === 'hash' && positional.length === 1) {
    const key = positional[0] === '-' ? (await io.readStdin()).trim() : positional[0]!;
    if (!isWellFormedApiKey(key, prefix)) {
      io.stderr(`keys hash: not a well-formed "${prefix}" key (format ${prefix}_<22 base62>_<6 base62 checksum>)`);
      return 1;
    }
    io.stdout(hashApiKey(key));
    return 0;
  }
  io.stderr(USAGE);
  return 2;
}
