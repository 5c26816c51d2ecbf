import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import { loadMigrations, migrationsDirectory } from '../../src/db/migrations.js';
import { openapiDocumentPath } from '../../src/http/routes/admin-api/admin-api.js';
import { uiAssetsDirectory } from '../../src/http/ui/ui-bundle.js';
import { luaDirectory } from '../../src/redis/scripts.js';
import {
  dockerIgnores,
  dockerignorePatterns,
  execForm,
  lintDockerfile,
  parseCopy,
  parseStages,
  splitImage,
  type Stage,
} from '../support/dockerfile-lint.js';

/**
 * The Dockerfile: hadolint's rules that matter here (test/support/
 * dockerfile-lint.ts says why they are written out), and a dry run of the
 * final stage's COPY lines into a temporary folder, where the code's own
 * path resolution (luaDirectory, migrationsDirectory, openapiDocumentPath,
 * QUOTAGATE_CONFIG, the ENTRYPOINT) must find everything it reads at run time.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const DOCKERFILE = readFileSync(resolve(ROOT, 'Dockerfile'), 'utf8');
const IGNORE = dockerignorePatterns(readFileSync(resolve(ROOT, '.dockerignore'), 'utf8'));
const stages = parseStages(DOCKERFILE);
const final = stages.at(-1)!;
const stageNamed = (name: string): Stage => stages.find((stage) => stage.name === name)!;
const argsOf = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

/** The final stage's ENV, as the container sees it. */
function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const args of argsOf(final, 'ENV')) {
    for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) env[match[1]!] = match[2]!.replace(/^"|"$/g, '');
  }
  return env;
}

describe('Dockerfile lint (hadolint rules, written out)', () => {
  it('has no findings', () => {
    expect(lintDockerfile(DOCKERFILE)).toEqual([]);
  });

  const good = [
    'FROM node:20-bookworm-slim AS build',
    'WORKDIR /app',
    'RUN npm ci',
    'FROM node:20-bookworm-slim',
    'WORKDIR /app',
    'COPY --from=build /app/dist ./dist',
    'USER node',
    'HEALTHCHECK CMD ["true"]',
    'CMD ["node", "dist/bin.js"]',
  ];
  it('finds nothing in a minimal good Dockerfile', () => {
    expect(lintDockerfile(good.join('\n'))).toEqual([]);
  });

  it.each([
    ['DL3006', (l: string[]) => l.map((x) => x.replace('node:20-bookworm-slim AS build', 'node AS build'))],
    ['DL3007', (l: string[]) => l.map((x) => x.replace('FROM node:20-bookworm-slim', 'FROM node:latest'))],
    ['DL3000', (l: string[]) => l.map((x) => x.replace('WORKDIR /app', 'WORKDIR app'))],
    ['DL3002', (l: string[]) => l.map((x) => x.replace('USER node', 'USER root'))],
    ['DL3016', (l: string[]) => l.map((x) => x.replace('npm ci', 'npm install'))],
    ['DL3020', (l: string[]) => [...l.slice(0, 6), 'ADD package.json ./', ...l.slice(6)]],
    ['DL3022', (l: string[]) => l.map((x) => x.replace('--from=build', '--from=builder'))],
    ['DL3025', (l: string[]) => l.map((x) => x.replace('CMD ["node", "dist/bin.js"]', 'CMD node dist/bin.js'))],
    ['DL3015', (l: string[]) => [...l.slice(0, 2), 'RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*', ...l.slice(2)]],
    ['DL3009', (l: string[]) => [...l.slice(0, 2), 'RUN apt-get update && apt-get install -y --no-install-recommends curl', ...l.slice(2)]],
    ['DL3004', (l: string[]) => [...l.slice(0, 2), 'RUN sudo ls', ...l.slice(2)]],
    ['QG001', (l: string[]) => l.slice(3)],
    ['QG002', (l: string[]) => l.map((x) => x.replace('--from=build', '--from=build --chown=node:node'))],
    ['QG003', (l: string[]) => l.filter((x) => !x.startsWith('HEALTHCHECK'))],
  ])('finds %s where it applies', (rule, breakIt) => {
    expect(lintDockerfile(breakIt(good).join('\n')).map((f) => f.rule)).toContain(rule);
  });
});

describe('Dockerfile shape', () => {
  it("builds on a Node image whose major version satisfies package.json's engines, the same in every stage", () => {
    const engines = (JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    const major = Number(/(\d+)/.exec(engines)![1]);
    for (const stage of stages) {
      const [repository, tag] = splitImage(stage.image);
      expect(repository).toBe('node');
      expect(Number(/^(\d+)/.exec(tag ?? '')?.[1])).toBe(major);
    }
    expect(new Set(stages.map((s) => s.image)).size).toBe(1);
  });

  it('installs with npm ci, production dependencies only in the stage the runtime copies node_modules from', () => {
    const deps = stageNamed(parseCopy(final.instructions.find((i) => i.keyword === 'COPY' && i.args.includes('node_modules'))!.args).flags.from!);
    expect(argsOf(deps, 'RUN').join(' ')).toMatch(/npm ci (\S+ )*--omit=dev/);
    expect(argsOf(stageNamed('build'), 'RUN').join(' ')).toMatch(/npm ci/);
  });

  it("exposes and health-checks the default config's listeners; the entry point is the compiled src/bin.ts", async () => {
    const env = imageEnv();
    const config = await loadConfigFile(resolve(ROOT, relative('/app', env.QUOTAGATE_CONFIG!)), env);
    expect(argsOf(final, 'EXPOSE').join(' ').split(/\s+/).map(Number)).toEqual([config.listeners.proxy.port, config.listeners.admin.port]);
    expect(config.listeners.admin.host).toBe('0.0.0.0');
    const healthcheck = argsOf(final, 'HEALTHCHECK')[0]!;
    expect(healthcheck).toContain(`http://127.0.0.1:${config.listeners.admin.port}/healthz`);
    expect(execForm(healthcheck.slice(healthcheck.indexOf('['))), 'HEALTHCHECK CMD in exec form').toBeDefined();
    const entrypoint = execForm(argsOf(final, 'ENTRYPOINT')[0]!)!;
    expect(entrypoint[0]).toBe('node');
    expect(entrypoint[1]).toMatch(/^dist\/src\/.+\.js$/);
    expect(statSync(resolve(ROOT, entrypoint[1]!.replace(/^dist\//, '').replace(/\.js$/, '.ts'))).isFile()).toBe(true);
    expect(execForm(argsOf(final, 'CMD')[0]!)).toEqual(['serve']);
  });
});

describe('the runtime image holds every file quotagate reads', () => {
  let image: string;
  const workdir = () => join(image, argsOf(final, 'WORKDIR').at(-1)!);

  /**
   * Plays the final stage's COPY lines into `image`: from the build context
   * less .dockerignore, from the `build` stage its compiled output (one .js
   * per src/*.ts, as tsconfig.build.json emits), from other stages an empty
   * folder (node_modules, checked against the imports below).
   */
  beforeAll(() => {
    image = mkdtempSync(join(tmpdir(), 'quotagate-image-'));
    let cwd = '/';
    for (const { keyword, args } of final.instructions) {
      if (keyword === 'WORKDIR') cwd = resolve(cwd, args);
      if (keyword !== 'COPY') continue;
      const { flags, sources, destination } = parseCopy(args);
      const into = (source: string) => {
        const target = resolve(cwd, destination);
        return join(image, destination.endsWith('/') || sources.length > 1 ? join(target, source.split('/').at(-1)!) : target);
      };
      for (const source of sources) {
        if (flags.from === 'build' && source.startsWith('/app/dist/src')) {
          for (const file of walk(resolve(ROOT, 'src')).filter((f) => f.endsWith('.ts'))) {
            const out = join(into(source), relative(resolve(ROOT, 'src'), file).replace(/\.ts$/, '.js'));
            mkdirSync(dirname(out), { recursive: true });
            writeFileSync(out, '');
          }
        } else if (flags.from !== undefined) {
          mkdirSync(into(source), { recursive: true });
        } else {
          cpSync(resolve(ROOT, source), into(source), {
            recursive: true,
            filter: (path) => !dockerIgnores(IGNORE, relative(ROOT, path).split('\\').join('/')),
          });
        }
      }
    }
  });
  afterAll(() => rmSync(image, { recursive: true, force: true }));

  /** Where a module under src/ sits in the image, compiled. */
  const compiledDir = (sourceDir: string) => join(workdir(), 'dist', relative(ROOT, resolve(ROOT, sourceDir)));
  const inImage = (path: string) => expect(relative(image, path).startsWith('..'), `${path} is inside the image`).toBe(false);

  it('the entry point', () => {
    const entrypoint = execForm(argsOf(final, 'ENTRYPOINT')[0]!)!;
    expect(statSync(join(workdir(), entrypoint[1]!)).isFile()).toBe(true);
  });

  it('lua/, where luaDirectory looks from the compiled src/redis', () => {
    const dir = luaDirectory(compiledDir('src/redis'));
    inImage(dir);
    expect(readdirSync(dir).sort()).toEqual(readdirSync(resolve(ROOT, 'lua')).sort());
  });

  it('migrations/, where migrationsDirectory looks from the compiled src/db', () => {
    const dir = migrationsDirectory(compiledDir('src/db'));
    inImage(dir);
    expect(loadMigrations(dir).map((m) => m.fileName)).toEqual(loadMigrations().map((m) => m.fileName));
  });

  it('openapi/admin.yaml, where openapiDocumentPath looks from the compiled admin API module', () => {
    const path = openapiDocumentPath(compiledDir('src/http/routes/admin-api'));
    inImage(path);
    expect(statSync(path).isFile()).toBe(true);
  });

  it('dist/ui (the compiled pages, copied from the build stage), where uiAssetsDirectory looks from the compiled src/http/ui', () => {
    const dir = uiAssetsDirectory(compiledDir('src/http/ui'));
    inImage(dir);
    expect(relative(workdir(), dir)).toBe('dist/ui');
    expect(statSync(dir).isDirectory()).toBe(true);
    expect(argsOf(stageNamed('build'), 'COPY')).toEqual(expect.arrayContaining(['ui ./ui', 'scripts/build-ui.ts ./scripts/']));
  });

  it('the default config at QUOTAGATE_CONFIG, valid with the image environment, and every shipped example config', async () => {
    const env = imageEnv();
    const configPath = join(image, env.QUOTAGATE_CONFIG!);
    await expect(loadConfigFile(configPath, env)).resolves.toBeDefined();
    const examples = readdirSync(resolve(ROOT, 'config')).filter((f) => f.startsWith('gateway') && f.endsWith('.yaml'));
    expect(readdirSync(join(workdir(), 'config'))).toEqual(expect.arrayContaining(examples));
  });

  it('package.json with "type": "module", which the compiled ESM needs', () => {
    const manifest = JSON.parse(readFileSync(join(workdir(), 'package.json'), 'utf8')) as { type: string };
    expect(manifest.type).toBe('module');
  });

  it('production node_modules: every package that src/ imports at run time is a dependency, not a devDependency', () => {
    const manifest = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(statSync(join(workdir(), 'node_modules')).isDirectory()).toBe(true);
    const imported = new Set<string>();
    for (const file of walk(resolve(ROOT, 'src')).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/^(?:import|export)\s+(?!type\s)[^;]*?\sfrom\s+'([^'.][^']*)'|import\('([^'.][^']*)'\)/gm)) {
        const specifier = match[1] ?? match[2]!;
        if (specifier.startsWith('node:')) continue;
        imported.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
      }
    }
    expect(imported.size).toBeGreaterThan(5);
    for (const name of imported) expect(Object.keys(manifest.dependencies), name).toContain(name);
  });

  it('.dockerignore keeps none of them out of the build context', () => {
    const fromContext = [...stages.flatMap((stage) => stage.instructions)]
      .filter((i) => i.keyword === 'COPY' && parseCopy(i.args).flags.from === undefined)
      .flatMap((i) => parseCopy(i.args).sources);
    expect(fromContext).toEqual(expect.arrayContaining(['lua', 'migrations', 'openapi', 'config', 'src', 'package.json', 'package-lock.json', 'gateway.yaml']));
    for (const source of fromContext) {
      expect(dockerIgnores(IGNORE, source), source).toBe(false);
      for (const file of walk(resolve(ROOT, source))) {
        expect(dockerIgnores(IGNORE, relative(ROOT, file)), relative(ROOT, file)).toBe(false);
      }
    }
    // The matcher itself: what .dockerignore does leave out.
    expect(dockerIgnores(IGNORE, 'node_modules/x/index.js')).toBe(true);
    expect(dockerIgnores(IGNORE, 'test/unit/a.test.ts')).toBe(true);
  });
});

/** Every file under `path` (or `path` itself when it is a file). */
function walk(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).flatMap((entry) => walk(join(path, entry)));
}
