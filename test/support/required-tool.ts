import { spawnSync } from 'node:child_process';

/**
 * Throws unless `command …probeArgs` runs and exits 0, with a message that
 * names the Debian package and the command that installs it. A test that
 * needs a tool fails without it, never skips: `npm test`
 * (scripts/prepare-test-env.sh) installs the tool when run as root.
 */
export function requireTool(command: string, probeArgs: readonly string[], debianPackage: string): void {
  const probe = spawnSync(command, probeArgs, { encoding: 'utf8' });
  if (probe.error === undefined && probe.status === 0) return;
  const why = probe.error?.message ?? `\`${[command, ...probeArgs].join(' ')}\` exited ${probe.status}: ${probe.stderr.trim()}`;
  throw new Error(
    `${command} is not installed or does not run (${why}); install ${debianPackage}: apt-get install ${debianPackage} ` +
      '(npm test does this itself when run as root)',
  );
}
