// Import-direction rules from /shared/ARCHITECTURE.md ("arrows point down only"), as data plus a
// checker that works on any tree, so test/import-direction.test.ts can prove it on small
// synthetic trees as well as on the real src/.
//
// Specifiers are found with TypeScript's own pre-processor (ts.preProcessFile): it sees static
// import/export-from, `import type`, dynamic `import()` and `require()`, and ignores comments and
// strings, which a regex would not.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import ts from 'typescript';

/** Top-level folders under src/ that sit at the bottom: they must not reach upward. */
export const BASE_ROOMS = ['providers', 'storage', 'crypto', 'scan', 'observability', 'config', 'retry'];

/** Rooms that orchestrate; base rooms never import them. */
export const UPPER_ROOMS = [
  'http',
  'jobs',
  'cli',
  'sync',
  'ingest',
  'webhooks',
  'send',
  'lifecycle',
  'oauth',
  'bootstrap',
];

/** The sandbox is a standalone fake of Google and Microsoft: it may use only these rooms. */
export const SANDBOX_ALLOWED = ['sandbox', 'observability', 'config', 'providers'];

/** http is the top layer: only the composition root and the CLI start it. */
export const HTTP_IMPORTERS = ['bootstrap', 'cli'];

/** The composition root wires everything together (everything except the CLI on top of it). */
export const COMPOSITION_ROOTS = ['bootstrap'];

/** Database drivers and the generated Prisma client: only src/storage/** may import these. */
export const DB_PACKAGES = ['@prisma/client', '@prisma/adapter-pg', 'pglite-prisma-adapter', 'pg'];

/**
 * Provider SDKs: only the provider rooms (src/providers/google, src/providers/microsoft) and the
 * sandbox stand-ins may import them. Everything else talks to providers through the ports of
 * src/providers/ports.ts.
 */
export const PROVIDER_SDK_PACKAGES = ['google-auth-library', 'gaxios', '@googleapis/*', '@azure/msal-*', '@microsoft/microsoft-graph-*'];
export const PROVIDER_SDK_ROOMS = ['providers', 'sandbox'];

/** True when package `pkg` matches one of PROVIDER_SDK_PACKAGES (`*` matches any rest of the name). */
export function isProviderSdk(pkg) {
  return PROVIDER_SDK_PACKAGES.some((p) => (p.endsWith('*') ? pkg.startsWith(p.slice(0, -1)) : pkg === p));
}

/** Room name used for files directly in src/ (e.g. src/main.ts). Treated like a composition root. */
export const ROOT_ROOM = '(root)';

/**
 * @typedef {{ file: string, line: number, specifier: string, fromRoom: string, toRoom: string | undefined, rule: string }} Violation
 */

/** Bare package name of a specifier: `@scope/pkg/sub` → `@scope/pkg`, `pg/lib/x` → `pg`. */
function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Top-level folder of `absPath` under `srcDir`, ROOT_ROOM for files directly in it, undefined outside. */
export function roomOf(srcDir, absPath) {
  const rel = path.relative(srcDir, absPath);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  const parts = rel.split(path.sep);
  return parts.length === 1 ? ROOT_ROOM : parts[0];
}

/**
 * Rules for one import. `toRoom` is set for relative imports that land inside src/;
 * `pkg` for bare package specifiers. Returns the names of broken rules (empty when allowed).
 */
export function brokenRules({ fromRoom, toRoom, pkg, isTest }) {
  const broken = [];
  if (toRoom !== undefined && toRoom !== fromRoom) {
    if (toRoom === 'cli') broken.push('nothing imports src/cli');
    // The sandbox is a fixture: a unit test beside the code may sign tokens or serve mail with it.
    const testFixture = isTest && toRoom === 'sandbox';
    if (BASE_ROOMS.includes(fromRoom) && UPPER_ROOMS.includes(toRoom)) {
      broken.push(`base room ${fromRoom} must not import upper room ${toRoom}`);
    } else if (BASE_ROOMS.includes(fromRoom) && !BASE_ROOMS.includes(toRoom) && toRoom !== 'generated' && !testFixture) {
      // Rooms not named in ARCHITECTURE.md (e.g. audit, tenancy) are domain rooms: still upward.
      broken.push(`base room ${fromRoom} may import only base rooms (${BASE_ROOMS.join(', ')})`);
    }
    if (toRoom === 'http' && !HTTP_IMPORTERS.includes(fromRoom) && fromRoom !== ROOT_ROOM) {
      broken.push(`http is the top layer: only ${HTTP_IMPORTERS.join(', ')} import it`);
    }
    if (fromRoom === 'providers' && (toRoom === 'storage' || toRoom === 'http')) {
      broken.push(`providers never import ${toRoom}`);
    }
    if (fromRoom === 'sandbox' && !SANDBOX_ALLOWED.includes(toRoom)) {
      broken.push(`sandbox is standalone (may import only ${SANDBOX_ALLOWED.join(', ')})`);
    }
  }
  if (pkg !== undefined && isProviderSdk(pkg) && !PROVIDER_SDK_ROOMS.includes(fromRoom)) {
    broken.push(`only src/${PROVIDER_SDK_ROOMS.join(' and src/')} import provider SDK ${pkg}`);
  }
  if (toRoom === 'bootstrap' && fromRoom !== 'bootstrap' && fromRoom !== 'cli' && fromRoom !== ROOT_ROOM) {
    broken.push('only src/cli starts the composition root (bootstrap)');
  }
  if (toRoom === 'sandbox' && fromRoom !== 'sandbox' && !isTest && !COMPOSITION_ROOTS.includes(fromRoom) && fromRoom !== 'cli' && fromRoom !== ROOT_ROOM) {
    broken.push('only bootstrap and cli start the sandbox (other rooms reach it through the provider ports)');
  }
  const isRootLike = COMPOSITION_ROOTS.includes(fromRoom) || fromRoom === ROOT_ROOM;
  // Tests may read rows directly to prove "nothing stored in plaintext"; product code may not.
  if (fromRoom !== 'storage' && !isRootLike && !isTest) {
    if (toRoom === 'generated') broken.push('only src/storage imports the generated Prisma client');
    if (pkg !== undefined && DB_PACKAGES.includes(pkg)) broken.push(`only src/storage imports ${pkg}`);
  }
  return broken;
}

/** 1-based line number of character offset `pos` in `text`. */
function lineAt(text, pos) {
  let line = 1;
  for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Import/export/dynamic-import/require specifiers of one TypeScript source, with line numbers. */
export function importsOf(sourceText) {
  const info = ts.preProcessFile(sourceText, true, true);
  return info.importedFiles.map((f) => ({ specifier: f.fileName, line: lineAt(sourceText, f.pos) }));
}

async function listTsFiles(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'node_modules') continue;
      out.push(...(await listTsFiles(full)));
    } else if (/\.(c|m)?tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
      out.push(full);
    }
  }
  return out.sort();
}

/**
 * Checks every .ts file under `srcDir` (except the generated Prisma client, which is output, not
 * code we write). Paths in the result are relative to `baseDir` (default: the parent of srcDir).
 * @param {string} srcDir
 * @param {{ baseDir?: string }} [options]
 * @returns {Promise<Violation[]>}
 */
export async function checkImports(srcDir, options = {}) {
  const root = path.resolve(srcDir);
  const baseDir = path.resolve(options.baseDir ?? path.dirname(root));
  const violations = [];
  const rel = (file) => path.relative(baseDir, file).split(path.sep).join('/');
  const sources = new Map();
  /** Room-to-room imports of product code (tests excluded), for the cycle rule. */
  const roomEdges = [];
  for (const file of await listTsFiles(root)) {
    const fromRoom = roomOf(root, file);
    if (fromRoom === 'generated') continue;
    const isTest = /\.test\.(c|m)?tsx?$/.test(file);
    const text = await readFile(file, 'utf8');
    sources.set(file, { text, fromRoom, isTest });
    for (const { specifier, line } of importsOf(text)) {
      let toRoom;
      let pkg;
      if (specifier.startsWith('.')) {
        toRoom = roomOf(root, path.resolve(path.dirname(file), specifier));
      } else if (!specifier.startsWith('node:') && !specifier.startsWith('/')) {
        pkg = packageName(specifier);
      }
      // The top (composition root, CLI) is left out: an import of it is the composition-root rule's finding.
      const top = [ROOT_ROOM, 'cli', ...COMPOSITION_ROOTS];
      if (!isTest && toRoom !== undefined && toRoom !== fromRoom && !top.includes(fromRoom) && !top.includes(toRoom)) {
        roomEdges.push({ file: rel(file), line, specifier, fromRoom, toRoom });
      }
      for (const rule of brokenRules({ fromRoom, toRoom, pkg, isTest })) {
        violations.push({ file: rel(file), line, specifier, fromRoom, toRoom: toRoom ?? pkg, rule });
      }
    }
  }
  violations.push(...prismaReexportViolations(root, sources, rel), ...roomCycleViolations(roomEdges));
  return violations.sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
}

/** `.js`/`.ts` specifier → the absolute .ts path it names (without checking it exists). */
function resolveTs(fromFile, specifier) {
  return path.resolve(path.dirname(fromFile), specifier).replace(/\.(c|m)?js$/, '.ts');
}

/** Top-level import/export declarations of one file, with their module specifiers and names. */
function declarationsOf(file, text) {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out = [];
  for (const st of sf.statements) {
    if ((ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) && st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier)) {
      const line = sf.getLineAndCharacterOfPosition(st.getStart(sf)).line + 1;
      const specifier = st.moduleSpecifier.text;
      if (ts.isImportDeclaration(st)) {
        const b = st.importClause?.namedBindings;
        const names = b && ts.isNamedImports(b) ? b.elements.map((e) => ({ imported: (e.propertyName ?? e.name).text, local: e.name.text })) : [];
        out.push({ kind: 'import', specifier, line, names, namespace: !!b && ts.isNamespaceImport(b) });
      } else {
        const c = st.exportClause;
        const names = c && ts.isNamedExports(c) ? c.elements.map((e) => ({ imported: (e.propertyName ?? e.name).text, local: e.name.text })) : [];
        out.push({ kind: 'export-from', specifier, line, names, namespace: !c || ts.isNamespaceExport(c) });
      }
    } else if (ts.isExportDeclaration(st) && !st.moduleSpecifier && st.exportClause && ts.isNamedExports(st.exportClause)) {
      const line = sf.getLineAndCharacterOfPosition(st.getStart(sf)).line + 1;
      out.push({ kind: 'export-local', line, names: st.exportClause.elements.map((e) => ({ imported: (e.propertyName ?? e.name).text, local: e.name.text })) });
    }
  }
  return out;
}

/**
 * Prisma types reach other rooms only if storage hands them out. The precise rule: a storage
 * module's *Prisma exports* are the names it re-exports from the generated client or a database
 * package (`export { Prisma } from '../generated/prisma/client.js'`, `export *`, or `export { X }`
 * of a name imported from there), and, transitively, names another storage module re-exports
 * from such a module. Product code outside storage (the composition root excepted, as for the
 * client itself) must not import or re-export a Prisma export. Types that storage declares itself
 * (`export type DbTransaction = Prisma.TransactionClient`, a record interface) are storage's own
 * names and are allowed: callers hold them without naming Prisma.
 */
function prismaReexportViolations(root, sources, rel) {
  const isPrismaSource = (file, specifier) =>
    specifier.startsWith('.') ? roomOf(root, resolveTs(file, specifier)) === 'generated' : DB_PACKAGES.includes(packageName(specifier));
  const decls = new Map();
  for (const [file, s] of sources) decls.set(file, declarationsOf(file, s.text));
  /** storage file → Set of Prisma export names ('*' = everything, from `export *`). */
  const prismaExports = new Map();
  const storageFiles = [...sources].filter(([, s]) => s.fromRoom === 'storage' && !s.isTest).map(([f]) => f);
  for (let changed = true; changed; ) {
    changed = false;
    for (const file of storageFiles) {
      const names = prismaExports.get(file) ?? new Set();
      const before = names.size;
      const importedPrisma = new Set();
      for (const d of decls.get(file)) {
        if (d.kind === 'export-local') {
          for (const n of d.names) if (importedPrisma.has(n.imported)) names.add(n.local);
          continue;
        }
        const fromPrisma = isPrismaSource(file, d.specifier);
        const upstream = d.specifier.startsWith('.') ? prismaExports.get(resolveTs(file, d.specifier)) : undefined;
        const carries = (n) => fromPrisma || (upstream !== undefined && (upstream.has('*') || upstream.has(n)));
        if (d.kind === 'import') {
          for (const n of d.names) if (carries(n.imported)) importedPrisma.add(n.local);
        } else if (d.namespace) {
          if (fromPrisma || (upstream && upstream.size > 0)) names.add('*');
        } else {
          for (const n of d.names) if (carries(n.imported)) names.add(n.local);
        }
      }
      // Imports are listed before the local exports that use them in this codebase; one more pass catches the rest.
      for (const d of decls.get(file)) if (d.kind === 'export-local') for (const n of d.names) if (importedPrisma.has(n.imported)) names.add(n.local);
      prismaExports.set(file, names);
      if (names.size !== before) changed = true;
    }
  }
  const violations = [];
  for (const [file, s] of sources) {
    if (s.fromRoom === 'storage' || s.isTest || COMPOSITION_ROOTS.includes(s.fromRoom) || s.fromRoom === ROOT_ROOM) continue;
    for (const d of decls.get(file)) {
      if (d.kind === 'export-local' || !d.specifier.startsWith('.')) continue;
      const target = resolveTs(file, d.specifier);
      const exported = prismaExports.get(target);
      if (!exported || exported.size === 0) continue;
      const hits = d.namespace ? [...exported] : d.names.map((n) => n.imported).filter((n) => exported.has(n) || exported.has('*'));
      for (const name of hits) {
        violations.push({
          file: rel(file),
          line: d.line,
          specifier: d.specifier,
          fromRoom: s.fromRoom,
          toRoom: 'storage',
          rule: `${name === '*' ? 'everything' : name} is a Prisma type re-exported by storage: only src/storage uses Prisma types (declare a storage type instead)`,
        });
      }
    }
  }
  return violations;
}

/**
 * Arrows point one way between rooms too: a set of rooms that import each other (a cycle in the
 * room graph, tests excluded) is reported on every import that belongs to the cycle.
 */
function roomCycleViolations(edges) {
  const graph = new Map();
  for (const e of edges) {
    if (!graph.has(e.fromRoom)) graph.set(e.fromRoom, new Set());
    graph.get(e.fromRoom).add(e.toRoom);
  }
  // Tarjan's strongly connected components.
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const component = new Map();
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const members = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        members.push(w);
      } while (w !== v);
      members.sort();
      for (const m of members) component.set(m, members);
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return edges
    .filter((e) => component.get(e.fromRoom)?.length > 1 && component.get(e.fromRoom) === component.get(e.toRoom))
    .map((e) => ({ ...e, rule: `rooms ${component.get(e.fromRoom).join(', ')} import each other: arrows point one way` }));
}

/** `src/providers/x.ts:3 imports ../http/y.js (providers never import http)` */
export function formatViolation(v) {
  return `${v.file}:${v.line} imports ${v.specifier} (${v.rule})`;
}
