import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { eventually, within } from './within.js';

/** The repository's root: where `npm run …` runs, as in the README. */
export const REPOSITORY_ROOT = resolve(import.meta.dirname, '../..');

/**
 * node's arguments that run a TypeScript file as `npm start` does (tsx), from
 * any working directory (a bare `--import tsx` resolves from the cwd).
 */
export function tsxNodeArgs(script: string, ...args: string[]): string[] {
  const loader = pathToFileURL(join(REPOSITORY_ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  return ['--import', loader, join(REPOSITORY_ROOT, script), ...args];
}

/** What a finished command printed, and its exit status. */
export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandOptions {
  /** Working directory; the repository root when omitted. */
  readonly cwd?: string;
  /** Added to (or, as undefined, removed from) this process's environment. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Written to the command's stdin, which is then closed. */
  readonly stdin?: string;
  /** The command is killed (and the wait rejects) after this long; default 30 s. */
  readonly timeoutMs?: number;
}

function environmentOf(overrides: CommandOptions['env']): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [name, value] of Object.entries(overrides ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/**
 * Runs `command args…` to completion, as a user types it in a shell (no
 * shell itself: the arguments are passed as given). Bounded: a command that
 * runs past `timeoutMs` is killed and the wait rejects.
 */
export async function runCommand(command: string, args: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  const child = spawn(command, args, { cwd: options.cwd ?? REPOSITORY_ROOT, env: environmentOf(options.env), stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.stdin ?? '');
  const exited = new Promise<number | null>((resolveExit, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolveExit(code));
  });
  try {
    const code = await within(exited, options.timeoutMs ?? 30_000, `${command} ${args.join(' ')}`);
    return { code, stdout, stderr };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

/** `npm run -s quotagate -- <args>` in the repository: the README's way to run a command in a checkout. */
export function runQuotagate(args: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  return runCommand('npm', ['run', '-s', 'quotagate', '--', ...args], options);
}

/** A long-running command (a gateway, the demo) and what it printed so far. */
export interface RunningCommand {
  readonly child: ChildProcess;
  /** stdout and stderr so far, interleaved as they arrived. */
  readonly output: () => string;
  /** Resolves with the exit code once it exits (null when killed by a signal). */
  readonly exited: Promise<number | null>;
}

/**
 * Starts `command args…` and resolves once its output includes `readyText`
 * (within `timeoutMs`, default 45 s: an embedded database takes seconds to
 * open on a busy machine). A command that exits first, or does not get
 * there in time, is killed and the wait rejects with its output. The caller
 * stops it (`child.kill()`) and awaits `exited`.
 */
export async function startCommand(
  command: string,
  args: readonly string[],
  readyText: string,
  options: Omit<CommandOptions, 'stdin'> = {},
): Promise<RunningCommand> {
  const timeoutMs = options.timeoutMs ?? 45_000;
  const child = spawn(command, args, { cwd: options.cwd ?? REPOSITORY_ROOT, env: environmentOf(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  try {
    await within(
      Promise.race([
        eventually(() => output.includes(readyText), timeoutMs, JSON.stringify(readyText)),
        exited.then((code) => Promise.reject(new Error(`${command} exited with ${code}: ${output}`))),
      ]),
      timeoutMs + 1_000,
      `${command} ${args.join(' ')} to print ${JSON.stringify(readyText)}`,
    );
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n--- output so far:\n${output}`);
  }
  return { child, output: () => output, exited };
}
