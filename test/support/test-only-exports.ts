/**
 * `npx tsx test/support/test-only-exports.ts`: the exported names of src/
 * that no other module of src/ imports, each with the test files (under
 * test/ and bench/) that import it. An export only tests use is test
 * support in the wrong place, or an internal detail tested directly.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import ts from 'typescript';

const ROOT = join(import.meta.dirname, '../..');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : files(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

const rel = (path: string): string => relative(ROOT, path).split(sep).join('/');

/** Names a module exports (declarations and `export { … }` lists, not re-exports of other modules). */
function exportsOf(file: ts.SourceFile): string[] {
  const names: string[] = [];
  for (const statement of file.statements) {
    const modifiers = ts.canHaveModifiers(statement) ? ts.getModifiers(statement) : undefined;
    const exported = modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword) ?? false;
    if (exported && ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) if (ts.isIdentifier(declaration.name)) names.push(declaration.name.text);
    } else if (
      exported &&
      (ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement) || ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement) || ts.isEnumDeclaration(statement)) &&
      statement.name !== undefined
    ) {
      names.push(statement.name.text);
    } else if (ts.isExportDeclaration(statement) && statement.moduleSpecifier === undefined && statement.exportClause !== undefined && ts.isNamedExports(statement.exportClause)) {
      for (const element of statement.exportClause.elements) names.push(element.name.text);
    }
  }
  return names;
}

/** What `file` imports from each module it names: resolved repository path → names (`*` for a namespace or re-export of all). */
function importsOf(file: ts.SourceFile, path: string): Map<string, Set<string>> {
  const found = new Map<string, Set<string>>();
  const add = (specifier: string, names: string[]): void => {
    if (!specifier.startsWith('.')) return;
    const target = posix.normalize(posix.join(posix.dirname(path), specifier)).replace(/\.js$/, '.ts');
    const set = found.get(target) ?? new Set<string>();
    for (const name of names) set.add(name);
    found.set(target, set);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const names: string[] = [];
      if (clause?.name !== undefined) names.push('default');
      const bindings = clause?.namedBindings;
      if (bindings !== undefined && ts.isNamespaceImport(bindings)) names.push('*');
      if (bindings !== undefined && ts.isNamedImports(bindings)) for (const element of bindings.elements) names.push((element.propertyName ?? element.name).text);
      add(node.moduleSpecifier.text, names);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.exportClause;
      add(node.moduleSpecifier.text, clause !== undefined && ts.isNamedExports(clause) ? clause.elements.map((e) => (e.propertyName ?? e.name).text) : ['*']);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      if (argument !== undefined && ts.isStringLiteralLike(argument)) add(argument.text, ['*']);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

const parsed = [...files(join(ROOT, 'src')), ...files(join(ROOT, 'test')), ...files(join(ROOT, 'bench'))].map((absolute) => {
  const path = rel(absolute);
  const file = ts.createSourceFile(path, readFileSync(absolute, 'utf8'), ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  return { path, file, imports: importsOf(file, path) };
});
const lines: string[] = [];
for (const module of parsed.filter((m) => m.path.startsWith('src/'))) {
  for (const name of exportsOf(module.file)) {
    const users = parsed.filter((other) => other.path !== module.path && (other.imports.get(module.path)?.has(name) || other.imports.get(module.path)?.has('*')));
    if (users.some((user) => user.path.startsWith('src/'))) continue;
    lines.push(`${module.path}\t${name}\t${users.map((user) => user.path).join(' ') || '(no importer)'}`);
  }
}
process.stdout.write(`${lines.join('\n')}\n`);
void dirname;
