import { runCredits, runSubjects, runUsage } from './admin-commands.js';
import { runCheckConfig } from './check-config.js';
import type { CommandIo } from './io.js';
import { runKeys } from './keys.js';
import { runMigrate } from './migrate.js';

/** What `quotagate` (no command, `help`, `--help`, or an unknown command) prints to stderr. */
const USAGE = `usage: quotagate <command>
  serve [--config gateway.yaml]   run the gateway (config: --config, else $QUOTAGATE_CONFIG, else ./gateway.yaml)
  check-config [file]             validate a config offline; exits 1 on error
  keys generate | keys hash <key> API key helpers for gateway.yaml
  keys create --subject S [--plan P] [--name N] | keys list --subject S | keys revoke <keyId>
                                  API keys in the database (the embedded one only while the gateway is stopped)
  subjects set-plan <S> <P>       move a subject to another plan
  usage <S>                       a subject's current-period counts from the usage ledger
  usage verify [--subject S]      flush, then compare the ledger with the Redis store; exits 1 on a drift
  credits grant <S> <units> --metric M [--expires ISO-8601] [--reason R]
                                  grant prepaid credits of a metered metric (pushed to the Redis store at once)
  migrate [--config gateway.yaml] bring the database (postgres section) up to date`;

/**
 * Runs the command in `argv` (without node and script) and resolves to its
 * exit status: 0 for help, 2 for an unknown command. `serve` is the
 * composition root's own (it owns signals and the process), passed in.
 */
export async function runCommand(
  argv: readonly string[],
  io: CommandIo,
  serve: (argv: readonly string[]) => Promise<number>,
): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'check-config':
      return runCheckConfig(rest, io);
    case 'keys':
      return runKeys(rest, io);
    case 'migrate':
      return runMigrate(rest, io);
    case 'subjects':
      return runSubjects(rest, io);
    case 'usage':
      return runUsage(rest, io);
    case 'credits':
      return runCredits(rest, io);
    default:
      io.stderr(USAGE);
      return command === undefined || command === 'help' || command === '--help' ? 0 : 2;
  }
}
