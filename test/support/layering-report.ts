/**
 * `npm run layering [-- <src dir>]`: the import graph of src/ (or of another
 * checkout's src/, to compare before and after a change) and every rule of
 * docs/architecture.md it breaks. Exits 1 when a rule is broken.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readSourceTree, SRC_DIR, type SourceModule } from './import-graph.js';
import { checkLayering, implementationsOf, type LayeringReport } from './layering-check.js';
import { readLayeringRules } from './layering-rules.js';

const root = resolve(process.argv[2] ?? SRC_DIR);
const tree = readSourceTree(root);
const rules = readLayeringRules();
const lines = (module: SourceModule): number => readFileSync(join(root, module.path), 'utf8').split('\n').length;

const areas = [...new Set(tree.map((module) => module.area))].sort(
  (a, b) => (rules.layers.get(a) ?? 99) - (rules.layers.get(b) ?? 99) || a.localeCompare(b),
);
const out: string[] = [`import graph of ${root}: ${tree.length} modules, ${tree.reduce((sum, module) => sum + lines(module), 0)} lines`, ''];
out.push('area (layer): modules, lines → areas it imports (import statements)');
for (const area of areas) {
  const modules = tree.filter((module) => module.area === area);
  const targets = new Map<string, number>();
  for (const module of modules) {
    for (const local of module.localImports) {
      const to = local.path.split('/')[0]!;
      if (to !== area) targets.set(to, (targets.get(to) ?? 0) + 1);
    }
  }
  const edges = [...targets].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([to, count]) => `${to} ${count}`);
  const layer = rules.layers.get(area) ?? '?';
  out.push(`  ${`${area} (${layer})`.padEnd(16)} ${String(modules.length).padStart(3)} modules ${String(modules.reduce((s, m) => s + lines(m), 0)).padStart(6)} lines → ${edges.join(', ') || '-'}`);
}
out.push('', 'packages (not node:) → areas that import them (modules)');
const packageUse = new Map<string, Map<string, number>>();
for (const module of tree) {
  for (const name of module.packages.filter((p) => !p.startsWith('node:'))) {
    const byArea = packageUse.get(name) ?? new Map<string, number>();
    byArea.set(module.area, (byArea.get(module.area) ?? 0) + 1);
    packageUse.set(name, byArea);
  }
}
for (const [name, byArea] of [...packageUse].sort((a, b) => a[0].localeCompare(b[0]))) {
  out.push(`  ${name.padEnd(22)} ${[...byArea].map(([area, count]) => `${area} ${count}`).join(', ')}`);
}
out.push('', 'concrete implementations → the modules that construct them');
const implementations = implementationsOf(tree);
for (const [name, home] of [...implementations].sort((a, b) => a[0].localeCompare(b[0]))) {
  const sites = tree.filter((module) => module.constructs.includes(name)).map((module) => (module.path === home ? `${module.path} (own)` : module.path));
  out.push(`  ${name.padEnd(24)} ${home.padEnd(34)} ${sites.join(', ') || '(not constructed in src/)'}`);
}
const report = checkLayering(tree, rules);
const titles: Record<keyof LayeringReport, string> = {
  unknownAreas: 'areas without a layer',
  unresolved: 'relative imports of no module',
  wrongWay: 'imports pointing up or sideways',
  packages: 'packages outside their areas',
  constructions: 'implementations constructed outside the composition root and the factories',
  staleConstructions: 'rows of the constructions table that no longer hold',
  boundaries: 'process boundaries crossed',
  middleware: 'pipeline steps importing a route or another step',
  staleExceptions: 'exceptions no longer needed',
};
out.push('', 'rules of docs/architecture.md');
let broken = 0;
for (const key of Object.keys(titles) as (keyof LayeringReport)[]) {
  const found = report[key];
  broken += found.length;
  out.push(`  ${titles[key]}: ${found.length === 0 ? 'none' : found.length}`);
  for (const item of found) out.push(`    ${item}`);
}
process.stdout.write(`${out.join('\n')}\n`);
process.exitCode = broken === 0 ? 0 : 1;
