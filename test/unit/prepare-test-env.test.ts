/**
 * scripts/prepare-test-env.sh, which `npm test` and .ci/run run before the
 * suite: driven on a PATH of stub commands (apt-get, id, redis-cli,
 * pg_isready, …) that record how they were called, so the test can neither
 * install packages nor touch the machine's Redis and PostgreSQL.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPOSITORY_ROOT } from '../support/command-process.js';

const SCRIPT = join(REPOSITORY_ROOT, 'scripts/prepare-test-env.sh');
/** The real commands the script (and the stubs: chmod, touch) use; everything else comes from stubs. */
const REAL_COMMANDS = ['bash', 'cat', 'chmod', 'grep', 'printf', 'sed', 'seq', 'sleep', 'sort', 'tail', 'touch'];

interface Machine {
  readonly dir: string;
  /** Every stub call so far, one `name args…` line each. */
  calls(): string[];
  /** Runs the script on this machine. */
  prepare(): { status: number | null; stderr: string; stdout: string };
}

const machines: string[] = [];
afterEach(() => {
  for (const dir of machines.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * A machine of stubs: `root` decides what `id -u` says; `tools` are the
 * commands present from the start; apt-get (when `apt`) "installs" a
 * package by creating its commands; Redis and PostgreSQL answer once
 * `services` says so or their start command was run.
 */
function machine(options: { root: boolean; apt: boolean; tools: readonly string[]; services: { redis: boolean; postgres: boolean } }): Machine {
  const dir = mkdtempSync(join(tmpdir(), 'quotagate-prepare-'));
  machines.push(dir);
  const bin = join(dir, 'bin');
  const state = join(dir, 'state');
  spawnSync('mkdir', ['-p', bin, state]);
  for (const command of REAL_COMMANDS) {
    const real = spawnSync('bash', ['-c', `command -v ${command}`], { encoding: 'utf8' }).stdout.trim();
    symlinkSync(real, join(bin, command));
  }
  const stub = (name: string, body: string): void => {
    // Never write through a link to a real command.
    if (REAL_COMMANDS.includes(name)) throw new Error(`${name} is a real command here, not a stub`);
    writeFileSync(join(bin, name), `#!/bin/bash\necho "${name} $*" >> ${join(dir, 'calls')}\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  const tool = (name: string): void => stub(name, 'exit 0');
  for (const name of options.tools) tool(name);
  // `ls /etc/postgresql` names this machine's PostgreSQL version.
  stub('ls', '[ "$1" = /etc/postgresql ] && echo 15');
  stub('id', `echo ${options.root ? 0 : 1000}`);
  const packages: Record<string, readonly string[]> = {
    prometheus: ['prometheus', 'promtool'],
    'redis-sentinel': ['redis-sentinel'],
    chromium: ['chromium'],
    'docker-compose': ['docker-compose'],
  };
  if (options.apt) {
    const installs = Object.entries(packages)
      .map(([pkg, commands]) => `  [[ " $* " == *" ${pkg} "* ]] && for c in ${commands.join(' ')}; do printf '#!/bin/bash\\nexit 0\\n' > ${bin}/$c; chmod +x ${bin}/$c; done`)
      .join('\n');
    stub('apt-get', `if [ "$1" = install ]; then\n${installs}\nfi\nexit 0`);
  }
  if (options.services.redis) writeFileSync(join(state, 'redis'), '');
  if (options.services.postgres) writeFileSync(join(state, 'postgres'), '');
  stub('redis-cli', `[ -e ${state}/redis ] && echo PONG || exit 1`);
  stub('redis-server', `touch ${state}/redis`);
  stub('pg_isready', `[ -e ${state}/postgres ]`);
  stub('pg_ctlcluster', `touch ${state}/postgres`);
  return {
    dir,
    calls: () => (existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8').trimEnd().split('\n') : []),
    prepare: () => {
      const result = spawnSync(join(bin, 'bash'), [SCRIPT], { env: { PATH: bin }, encoding: 'utf8', timeout: 60_000 });
      return { status: result.status, stderr: result.stderr, stdout: result.stdout };
    },
  };
}

/** Calls that only look (a second run may make these and nothing else). */
const isProbe = (call: string): boolean => /^(redis-cli|pg_isready|id|ls) /.test(call);
const ALL_TOOLS = ['prometheus', 'promtool', 'redis-sentinel', 'chromium', 'docker-compose'];

describe('scripts/prepare-test-env.sh', () => {
  it('as root, installs every missing package with one apt-get update and one install, then a second run does nothing visible', () => {
    const box = machine({ root: true, apt: true, tools: [], services: { redis: true, postgres: true } });
    const first = box.prepare();
    expect(first.status).toBe(0);
    expect(first.stdout).toBe('');
    expect(first.stderr).toBe('prepare-test-env: installing prometheus redis-sentinel chromium docker-compose (apt-get)\n');
    expect(box.calls().filter((call) => call.startsWith('apt-get'))).toEqual([
      'apt-get update -qq',
      'apt-get install -y -qq --no-install-recommends prometheus redis-sentinel chromium docker-compose',
    ]);

    const before = box.calls().length;
    expect(box.prepare()).toEqual({ status: 0, stdout: '', stderr: '' });
    const second = box.calls().slice(before);
    expect(second.filter((call) => !isProbe(call))).toEqual([]);
  });

  it('installs only what is missing', () => {
    const box = machine({ root: true, apt: true, tools: ['prometheus', 'promtool', 'chromium', 'docker-compose'], services: { redis: true, postgres: true } });
    expect(box.prepare().status).toBe(0);
    expect(box.calls().filter((call) => call.startsWith('apt-get install'))).toEqual([
      'apt-get install -y -qq --no-install-recommends redis-sentinel',
    ]);
  });

  it('not as root, installs nothing and prints the command that installs each missing package; it still exits 0 so the suite runs and those tests fail naming it', () => {
    const box = machine({ root: false, apt: true, tools: ['redis-sentinel', 'chromium'], services: { redis: true, postgres: true } });
    const result = box.prepare();
    expect(result.status).toBe(0);
    expect(result.stderr).toBe(
      'prepare-test-env: prometheus is missing and the tests that need it will fail; install it: sudo apt-get install prometheus\n' +
        'prepare-test-env: docker-compose is missing and the tests that need it will fail; install it: sudo apt-get install docker-compose\n',
    );
    expect(box.calls().filter((call) => call.startsWith('apt-get'))).toEqual([]);
  });

  it('starts Redis and PostgreSQL when they do not answer, with the commands .ci/run used', () => {
    const box = machine({ root: true, apt: true, tools: ALL_TOOLS, services: { redis: false, postgres: false } });
    const result = box.prepare();
    expect(result.status).toBe(0);
    expect(result.stderr).toBe('prepare-test-env: starting Redis on 127.0.0.1:6379\nprepare-test-env: starting PostgreSQL 15 on 127.0.0.1:5432\n');
    expect(box.calls().filter((call) => /^(redis-server|pg_ctlcluster) /.test(call))).toEqual([
      'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save  --appendonly no',
      'pg_ctlcluster --skip-systemctl-redirect 15 main start',
    ]);
  });

  it('exits 1 naming the command to run when Redis cannot be had (no redis-server here)', () => {
    const box = machine({ root: false, apt: false, tools: ALL_TOOLS, services: { redis: false, postgres: true } });
    rmSync(join(box.dir, 'bin/redis-server'));
    const result = box.prepare();
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      'prepare-test-env: Redis does not answer on 127.0.0.1:6379; start it: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no\n',
    );
  });
});
