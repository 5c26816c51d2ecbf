import type { SourceModule } from './import-graph.js';
import { EVERY_IMPLEMENTATION, type LayeringRules } from './layering-rules.js';

/** The rules of docs/architecture.md, one list of violations each (empty when kept). */
export interface LayeringReport {
  /** Areas under src/ with no layer in the table. */
  readonly unknownAreas: readonly string[];
  /** Relative imports that name no module of the tree (a typo would otherwise hide an edge). */
  readonly unresolved: readonly string[];
  /** Imports that point up a layer or sideways into another area of the same layer: `from → to`. */
  readonly wrongWay: readonly string[];
  /** Packages imported outside the areas their row allows: `module imports package`. */
  readonly packages: readonly string[];
  /** Concrete implementations constructed outside the composition root, their own module and the listed factories. */
  readonly constructions: readonly string[];
  /** Rows of the constructions table that no longer hold (the module does not construct the class, or it is no implementation). */
  readonly staleConstructions: readonly string[];
  /** `process.env`, `process.exit(`, `.listen(` outside their places, and imports of modules only some may import. */
  readonly boundaries: readonly string[];
  /** Pipeline steps that import a route or another step. */
  readonly middleware: readonly string[];
  /** Listed exceptions that no violation needs any more. */
  readonly staleExceptions: readonly string[];
}

/** The concrete implementations of `tree`: class → its module, for classes implementing an interface declared in the tree. */
export function implementationsOf(tree: readonly SourceModule[]): Map<string, string> {
  const interfaces = new Set(tree.flatMap((module) => module.interfaces));
  const implementations = new Map<string, string>();
  for (const module of tree) {
    for (const declared of module.classes) {
      if (declared.implements.some((name) => interfaces.has(name))) implementations.set(declared.name, module.path);
    }
  }
  return implementations;
}

/** Checks `tree` (the modules of src/) against `rules`. */
export function checkLayering(tree: readonly SourceModule[], rules: LayeringRules): LayeringReport {
  const paths = new Set(tree.map((module) => module.path));
  const areaOfPath = new Map(tree.map((module) => [module.path, module.area]));
  const usedExceptions = new Set<string>();
  const excused = (key: string): boolean => {
    if (!rules.exceptions.has(key)) return false;
    usedExceptions.add(key);
    return true;
  };

  const unknownAreas = [...new Set(tree.map((module) => module.area))].filter((area) => !rules.layers.has(area));
  const unresolved: string[] = [];
  const wrongWay: string[] = [];
  const packages: string[] = [];
  const middleware: string[] = [];
  for (const module of tree) {
    const fromLayer = rules.layers.get(module.area);
    for (const local of module.localImports) {
      if (!paths.has(local.path)) {
        unresolved.push(`${module.path}: ${local.specifier}`);
        continue;
      }
      const toArea = areaOfPath.get(local.path)!;
      if (toArea !== module.area) {
        const toLayer = rules.layers.get(toArea);
        if (fromLayer !== undefined && toLayer !== undefined && toLayer >= fromLayer) wrongWay.push(`${module.path} → ${local.path}`);
      }
      if (isStep(module.path) && (local.path.startsWith('http/routes/') || isStep(local.path))) {
        middleware.push(`${module.path} → ${local.path}`);
      }
    }
    for (const name of module.packages) {
      if (name.startsWith('node:')) continue;
      const allowed = rules.packages.get(name);
      const refused = rules.builtinsOnly.has(module.area) || (allowed !== undefined && !allowed.has(module.area));
      if (refused && !excused(`${module.path}|${name}`)) packages.push(`${module.path} imports ${name}`);
    }
  }

  const implementations = implementationsOf(tree);
  const constructions: string[] = [];
  for (const module of tree) {
    const allowed = rules.factories.get(module.path) ?? new Set<string>();
    for (const name of module.constructs) {
      const home = implementations.get(name);
      if (home === undefined || home === module.path || allowed.has(EVERY_IMPLEMENTATION) || allowed.has(name)) continue;
      constructions.push(`${module.path} constructs ${name} (of ${home})`);
    }
  }
  const staleConstructions: string[] = [];
  for (const [path, classes] of rules.factories) {
    const module = tree.find((candidate) => candidate.path === path);
    if (module === undefined) {
      staleConstructions.push(`${path}: no such module`);
      continue;
    }
    for (const name of classes) {
      if (name === EVERY_IMPLEMENTATION) continue;
      if (!implementations.has(name)) staleConstructions.push(`${path}: ${name} is no concrete implementation`);
      else if (!module.constructs.includes(name)) staleConstructions.push(`${path}: does not construct ${name}`);
    }
  }

  const boundaries: string[] = [];
  for (const [text, places] of rules.boundaries) {
    for (const module of tree) {
      if (module.code.includes(text) && !places.has(module.path)) boundaries.push(`${module.path} uses ${text}`);
    }
  }
  for (const [target, importers] of rules.importersOnly) {
    for (const module of tree) {
      if (module.localImports.some((local) => local.path === target) && !importers.has(module.path)) {
        boundaries.push(`${module.path} imports ${target}`);
      }
    }
  }

  const staleExceptions = [...rules.exceptions].filter((key) => !usedExceptions.has(key));
  return { unknownAreas, unresolved, wrongWay, packages, constructions, staleConstructions, boundaries, middleware, staleExceptions };
}

/** Whether `path` is a step of the proxy pipeline. */
function isStep(path: string): boolean {
  return path.startsWith('http/middleware/');
}
