// The import graph's rules (issue 11): no import goes upward or in a circle.
// Run: `npm run check:imports`; test/unit/imports.test.ts runs the same check in `npm test`.
//
// One table of layers, lowest first. A module may import modules of its own layer or of lower
// layers, never of a higher one; the `forbidden` rules below are generated from this table.
// Each entry is a path relative to the repository: a folder ends in '/', anything else is a file.
const layers = [
  ['lib/errors.ts', 'lib/backoff.ts', 'lib/util/'],
  ['lib/exec/'],
  ['lib/inventory/'],
  ['lib/remote/'],
  ['lib/nix/', 'lib/cache/'],
  ['lib/plan/'],
  ['lib/report/'],
  ['lib/stages/', 'lib/doctor/', 'lib/ops/'],
  ['lib/run/'],
  ['lib/cli/'],
  ['scripts/', 'bench/'],
];

/** The modules the rules are about: every other module (node_modules, node:, test/) is only imported. */
const checked = '^(lib|scripts|bench)/';

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** One anchored regex for a list of table entries: a folder matches everything below it, a file only itself. */
const regexOf = (paths) => `^(${paths.map((p) => escape(p) + (p.endsWith('/') ? '' : '$')).join('|')})`;
const labelOf = (paths) => paths.join(' ');
/** A short name for a layer, for its rule's name: ['lib/nix/', 'lib/cache/'] → 'nix-cache'. */
const nameOf = (paths) => paths.map((p) => p.replace(/\/$/, '').replace(/\.ts$/, '').split('/').pop()).join('-');

const upward = layers.slice(0, -1).map((paths, i) => ({
  name: `layer-${i}-${nameOf(paths)}-imports-upward`,
  severity: 'error',
  comment:
    `${labelOf(paths)} (layer ${i}) may import only its own layer and lower ones ` +
    `(${labelOf(layers.slice(0, i + 1).flat())}); this imports a higher layer. ` +
    'Move what both need down a layer, or pass it in from above.',
  from: { path: regexOf(paths) },
  to: { path: regexOf(layers.slice(i + 1).flat()) },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle of imports (type-only imports count). Move what the modules share into a module both import.',
      from: { path: checked },
      to: { circular: true },
    },
    {
      name: 'stages-import-the-planner',
      severity: 'error',
      comment: 'lib/stages/ works from a plan it is given: it may import lib/plan/types.ts (and the non-planner plan/ modules), never the planner lib/plan/assemble.ts.',
      from: { path: '^lib/stages/' },
      to: { path: '^lib/plan/assemble\\.ts$' },
    },
    {
      name: 'report-model-imports-render',
      severity: 'error',
      comment: 'The report model stays below its renderings: in lib/report/, only lib/report/render/ imports lib/report/render/.',
      from: { path: '^lib/report/', pathNot: '^lib/report/render/' },
      to: { path: '^lib/report/render/' },
    },
    {
      name: 'lib-imports-test',
      severity: 'error',
      comment: 'Nothing in lib/ imports test/.',
      from: { path: '^lib/' },
      to: { path: '^test/' },
    },
    {
      name: 'unresolvable-import',
      severity: 'error',
      comment: 'An import that does not resolve to a file escapes every other rule here.',
      from: { path: checked },
      to: { couldNotResolve: true },
    },
  ],
  required: [
    {
      name: 'not-in-a-layer',
      severity: 'error',
      comment: `A module of lib/, scripts/ or bench/ outside every layer of .dependency-cruiser.cjs (a leftover of a move?): move it into a layer's folder, or add it to the table.`,
      // A module rule that fails for every module it selects: "each must import a module matching
      // a regex nothing matches". So each module outside the layers is reported once, imported or not.
      module: { path: checked, pathNot: regexOf(layers.flat()) },
      to: { path: '(?!)' },
    },
  ],
  options: {
    // TypeScript 7 (the Go compiler) has no JS API for dependency-cruiser's default TypeScript
    // parser; swc (@swc/core) parses TypeScript, and keeps type-only imports in the graph.
    parser: 'swc',
    tsPreCompilationDeps: true,
    doNotFollow: { path: ['node_modules', '^test/'] },
    moduleSystems: ['es6', 'cjs'],
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
