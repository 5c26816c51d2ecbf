/**
 * A Dockerfile reader and the hadolint rules that matter for this image,
 * for test/unit/deploy-dockerfile.test.ts. hadolint itself is not installable
 * here (the npm `hadolint` package downloads a binary at install time, and
 * Debian does not package it), so the rules are written out: each finding
 * carries hadolint's rule id where one exists (DLxxxx) and `QGxxx` for
 * quotagate's own. `hadolint Dockerfile` should agree wherever it runs.
 */

/** One instruction, continuation lines joined; `line` is where it starts (1-based). */
export interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

/** A build stage: its FROM image, its `AS` name, and its instructions after FROM. */
export interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly line: number;
  readonly instructions: readonly Instruction[];
}

export interface Finding {
  readonly rule: string;
  readonly line: number;
  readonly message: string;
}

/** Reads instructions: skips comments and blank lines, joins `\` continuations. */
export function parseInstructions(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || (trimmed === '' && pending === undefined)) return;
    const continued = trimmed.endsWith('\\');
    const piece = continued ? trimmed.slice(0, -1) : trimmed;
    pending = pending === undefined ? { text: piece, line: index + 1 } : { text: `${pending.text} ${piece}`, line: pending.line };
    if (continued) return;
    const match = /^(\S+)\s*(.*)$/s.exec(pending.text.trim());
    if (match !== null) instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim(), line: pending.line });
    pending = undefined;
  });
  return instructions;
}

/** Splits instructions into stages at each FROM. */
export function parseStages(text: string): Stage[] {
  const stages: Array<{ image: string; name: string | undefined; line: number; instructions: Instruction[] }> = [];
  for (const instruction of parseInstructions(text)) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/).filter((word) => !word.startsWith('--'));
      const asAt = words.findIndex((word) => word.toUpperCase() === 'AS');
      stages.push({ image: words[0]!, name: asAt === -1 ? undefined : words[asAt + 1], line: instruction.line, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

/** A COPY's `--flag=value` options, its sources and its destination. */
export function parseCopy(args: string): { flags: Record<string, string>; sources: string[]; destination: string } {
  const flags: Record<string, string> = {};
  let rest = args;
  for (let match = /^--([a-z-]+)=(\S+)\s+/.exec(rest); match !== null; match = /^--([a-z-]+)=(\S+)\s+/.exec(rest)) {
    flags[match[1]!] = match[2]!;
    rest = rest.slice(match[0].length);
  }
  const words = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
  return { flags, sources: words.slice(0, -1), destination: words.at(-1)! };
}

/** The words of an exec-form (JSON array) CMD, ENTRYPOINT or HEALTHCHECK CMD; undefined for shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    return JSON.parse(args) as string[];
  } catch {
    return undefined;
  }
}

/** Every finding of the rules below; an empty list means the Dockerfile passes. */
export function lintDockerfile(text: string): Finding[] {
  const findings: Finding[] = [];
  const stages = parseStages(text);
  const names = new Set<string>();
  const flag = (rule: string, line: number, message: string) => findings.push({ rule, line, message });

  for (const instruction of parseInstructions(text)) {
    if (instruction.keyword === 'MAINTAINER') flag('DL4000', instruction.line, 'MAINTAINER is deprecated; use a LABEL');
  }
  if (stages.length < 2) flag('QG001', 1, 'not a multi-stage build: the runtime image would carry the compiler and dev dependencies');

  stages.forEach((stage, index) => {
    const isFinal = index === stages.length - 1;
    const [repository, tag] = splitImage(stage.image);
    if (!names.has(stage.image) && stage.image !== 'scratch') {
      if (tag === undefined) flag('DL3006', stage.line, `${stage.image}: tag the base image explicitly`);
      else if (tag === 'latest') flag('DL3007', stage.line, `${repository}:latest: pin a version`);
    }
    let hasWorkdir = false;
    let lastUser: string | undefined;
    let hasHealthcheck = false;
    for (const { keyword, args, line } of stage.instructions) {
      if (keyword === 'WORKDIR') {
        hasWorkdir = true;
        if (!args.startsWith('/') && !args.startsWith('$')) flag('DL3000', line, `WORKDIR ${args}: use an absolute path`);
      }
      if (keyword === 'USER') lastUser = args.split(':')[0];
      if (keyword === 'HEALTHCHECK' && !/^NONE\b/i.test(args)) hasHealthcheck = true;
      if (keyword === 'ADD' && !/^(--\S+\s+)*(https?:|git@)/.test(args)) flag('DL3020', line, 'use COPY, not ADD, for files and folders');
      if ((keyword === 'CMD' || keyword === 'ENTRYPOINT') && execForm(args) === undefined) {
        flag('DL3025', line, `${keyword}: use the JSON (exec) form so that signals reach the process`);
      }
      if (keyword === 'COPY') {
        const { flags, destination } = parseCopy(args);
        if (flags.from !== undefined && !names.has(flags.from) && !/[:/]/.test(flags.from)) {
          flag('DL3022', line, `COPY --from=${flags.from}: no earlier stage has that name`);
        }
        if (!destination.startsWith('/') && !hasWorkdir) flag('DL3045', line, 'COPY to a relative path without a WORKDIR');
        const owner = flags.chown?.split(':')[0];
        if (isFinal && owner !== undefined && owner !== 'root' && owner !== '0') {
          flag('QG002', line, `COPY --chown=${flags.chown}: application files should be root-owned, read-only to the runtime user`);
        }
      }
      if (keyword === 'RUN') lintRun(args, line, flag);
    }
    if (isFinal) {
      if (lastUser === undefined || lastUser === 'root' || lastUser === '0') {
        flag('DL3002', stage.line, 'the final stage must switch to a non-root USER');
      }
      if (!hasHealthcheck) flag('QG003', stage.line, 'the final stage has no HEALTHCHECK');
      if (!stage.instructions.some((i) => i.keyword === 'COPY' && parseCopy(i.args).flags.from !== undefined)) {
        flag('QG001', stage.line, 'the final stage copies nothing from an earlier stage');
      }
    }
    if (stage.name !== undefined) names.add(stage.name);
  });
  return findings;
}

function lintRun(args: string, line: number, flag: (rule: string, line: number, message: string) => void): void {
  if (/(^|[;&|]\s*)sudo\s/.test(args)) flag('DL3004', line, 'do not use sudo: the build runs as root until USER');
  if (/\bnpm\s+(install|i)\b/.test(args)) flag('DL3016', line, 'use `npm ci` (the lockfile\'s exact versions), not `npm install`');
  if (/\bapt-get\s+upgrade\b|\bapt-get\s+dist-upgrade\b/.test(args)) flag('DL3005', line, 'do not apt-get upgrade in an image; update the base image');
  if (/\bapt-get\s+(\S+\s+)*install\b/.test(args)) {
    if (!/--no-install-recommends/.test(args)) flag('DL3015', line, 'apt-get install needs --no-install-recommends');
    if (!/\s(-y|--yes|-qq?y|--assume-yes)\b/.test(args)) flag('DL3014', line, 'apt-get install needs -y');
    if (!/rm -rf \/var\/lib\/apt\/lists/.test(args)) flag('DL3009', line, 'remove /var/lib/apt/lists/* in the same RUN');
  }
}

/** `node:20-bookworm-slim` → ['node', '20-bookworm-slim']; a digest counts as a tag. */
export function splitImage(image: string): [string, string | undefined] {
  const at = image.indexOf('@');
  if (at !== -1) return [image.slice(0, at), image.slice(at + 1)];
  const colon = image.lastIndexOf(':');
  return colon > image.lastIndexOf('/') ? [image.slice(0, colon), image.slice(colon + 1)] : [image, undefined];
}

/**
 * Whether .dockerignore `patterns` keep `path` (relative to the build context,
 * `/`-separated) out of the context: a pattern that matches the path or one of
 * its parent folders excludes it; a later `!pattern` brings it back.
 */
export function dockerIgnores(patterns: readonly string[], path: string): boolean {
  const prefixes = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).trim().replace(/^\/+|\/+$/g, '');
    if (pattern === '') continue;
    if (prefixes.some((prefix) => globToRegExp(pattern).test(prefix))) ignored = !negated;
  }
  return ignored;
}

/** The lines of a .dockerignore that are patterns. */
export function dockerignorePatterns(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i += 1) {
    const char = pattern[i]!;
    if (char === '*' && pattern[i + 1] === '*') {
      source += '.*';
      i += 1;
      if (pattern[i + 1] === '/') i += 1;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}
