import { isBuiltin } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import ts from 'typescript';

/**
 * The import graph of a source tree, read with the TypeScript parser (not
 * regular expressions): every import and re-export, type-only or not,
 * side-effect imports (`import './x.js'`) and dynamic `import('…')`; plus
 * which classes implement which interfaces and where classes are
 * constructed. The layering test checks it against docs/architecture.md;
 * `npm run layering` prints it.
 */

/** How a module refers to another. */
export type ImportKind = 'import' | 'type-import' | 'side-effect' | 're-export' | 'dynamic';

/** One import of a module, as written. */
export interface ImportRef {
  readonly specifier: string;
  readonly kind: ImportKind;
}

/** One module of the tree. */
export interface SourceModule {
  /** Path under the tree's root, with `/` separators: `http/middleware/limit.ts`. */
  readonly path: string;
  /** Its area: the first directory under the root (`http`), or the file itself at the root (`main.ts`). */
  readonly area: string;
  readonly imports: readonly ImportRef[];
  /** Relative imports resolved to tree paths (`../core/clock.js` → `core/clock.ts`), with their kind. */
  readonly localImports: readonly { readonly path: string; readonly kind: ImportKind; readonly specifier: string }[];
  /** Packages imported (`hono/body-limit` → `hono`, `@hono/node-server`, `node:fs`). */
  readonly packages: readonly string[];
  /** Interfaces declared here. */
  readonly interfaces: readonly string[];
  /** Classes declared here, each with the interfaces it `implements` (unqualified names only). */
  readonly classes: readonly { readonly name: string; readonly implements: readonly string[] }[];
  /** Names of the classes constructed here (`new X(…)`), each once. */
  readonly constructs: readonly string[];
  /** The text without comments, for the textual checks (process.env, listen()). */
  readonly code: string;
}

/** Every import of `source` (TypeScript or JavaScript text). */
export function importsOf(source: string, fileName = 'module.ts'): ImportRef[] {
  return [...analyse(source, fileName).imports];
}

/** The package an import specifier names (its first segment, or two for a scoped package); `node:x` for a built-in. */
export function packageOf(specifier: string): string {
  if (specifier.startsWith('node:')) return specifier;
  if (isBuiltin(specifier)) return `node:${specifier.split('/')[0]!}`;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function analyse(source: string, fileName: string): Pick<SourceModule, 'imports' | 'interfaces' | 'classes' | 'constructs'> {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const imports: ImportRef[] = [];
  const interfaces: string[] = [];
  const classes: { name: string; implements: string[] }[] = [];
  const constructs = new Set<string>();
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const kind: ImportKind = clause === undefined ? 'side-effect' : clause.isTypeOnly || allNamedTypeOnly(clause) ? 'type-import' : 'import';
      imports.push({ specifier: node.moduleSpecifier.text, kind });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      imports.push({ specifier: node.moduleSpecifier.text, kind: 're-export' });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      if (argument !== undefined && ts.isStringLiteralLike(argument)) imports.push({ specifier: argument.text, kind: 'dynamic' });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const expression = node.moduleReference.expression;
      if (ts.isStringLiteral(expression)) imports.push({ specifier: expression.text, kind: 'import' });
    } else if (ts.isInterfaceDeclaration(node)) {
      interfaces.push(node.name.text);
    } else if (ts.isClassDeclaration(node) && node.name !== undefined) {
      const implemented = (node.heritageClauses ?? [])
        .filter((clause) => clause.token === ts.SyntaxKind.ImplementsKeyword)
        .flatMap((clause) => clause.types.map((type) => type.expression))
        .filter(ts.isIdentifier)
        .map((identifier) => identifier.text);
      classes.push({ name: node.name.text, implements: implemented });
    } else if (ts.isNewExpression(node) && ts.isIdentifier(node.expression)) {
      constructs.add(node.expression.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return { imports, interfaces, classes, constructs: [...constructs] };
}

/** `import { type A, type B } from …`: only types, though the clause itself is not `import type`. */
function allNamedTypeOnly(clause: ts.ImportClause): boolean {
  if (clause.name !== undefined) return false;
  const bindings = clause.namedBindings;
  return bindings !== undefined && ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((element) => element.isTypeOnly);
}

/** `source` without its comments (string contents are kept). */
export function withoutComments(source: string, fileName = 'module.ts'): string {
  const printer = ts.createPrinter({ removeComments: true });
  return printer.printFile(ts.createSourceFile(fileName, source, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS));
}

/** The area of a tree path: its first directory, or the file itself at the root. */
export function areaOf(path: string): string {
  return path.split('/')[0]!;
}

/** Every `.ts` module under `root`, analysed. */
export function readSourceTree(root: string): SourceModule[] {
  const files = new Map(listTypeScript(root).map((file) => [relative(root, file).split(sep).join('/'), readFileSync(file, 'utf8')]));
  return analyseTree(files);
}

/** The modules of a tree given as tree path → text (`readSourceTree` reads one from disk). */
export function analyseTree(files: ReadonlyMap<string, string>): SourceModule[] {
  const known = new Set(files.keys());
  return [...files].map(([path, text]) => {
    const { imports, interfaces, classes, constructs } = analyse(text, path);
    const localImports = imports
      .filter((ref) => ref.specifier.startsWith('.'))
      .map((ref) => ({ ...ref, path: resolveLocal(path, ref.specifier, known) }));
    const packages = [...new Set(imports.filter((ref) => !ref.specifier.startsWith('.')).map((ref) => packageOf(ref.specifier)))];
    return { path, area: areaOf(path), imports, localImports, packages, interfaces, classes, constructs, code: withoutComments(text, path) };
  });
}

/** `./x.js` from `dir/a.ts` → `dir/x.ts` (what tsc's NodeNext resolution does for a .ts source); as written when nothing matches. */
function resolveLocal(from: string, specifier: string, known: ReadonlySet<string>): string {
  const joined = posix.normalize(posix.join(posix.dirname(from), specifier));
  const candidates = [joined.replace(/\.js$/, '.ts'), joined, `${joined}.ts`, `${joined}/index.ts`];
  return candidates.find((candidate) => known.has(candidate)) ?? joined;
}

function listTypeScript(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return listTypeScript(path);
      return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
    });
}

/** Directory of this module's repository's `src/`. */
export const SRC_DIR = join(dirname(import.meta.dirname), '..', 'src');
