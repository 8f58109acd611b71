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
    if (BASE_ROOMS.includes(fromRoom) && UPPER_ROOMS.includes(toRoom)) {
      broken.push(`base room ${fromRoom} must not import upper room ${toRoom}`);
    } else if (BASE_ROOMS.includes(fromRoom) && !BASE_ROOMS.includes(toRoom) && toRoom !== 'generated') {
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
  for (const file of await listTsFiles(root)) {
    const fromRoom = roomOf(root, file);
    if (fromRoom === 'generated') continue;
    const isTest = /\.test\.(c|m)?tsx?$/.test(file);
    const text = await readFile(file, 'utf8');
    for (const { specifier, line } of importsOf(text)) {
      let toRoom;
      let pkg;
      if (specifier.startsWith('.')) {
        toRoom = roomOf(root, path.resolve(path.dirname(file), specifier));
      } else if (!specifier.startsWith('node:') && !specifier.startsWith('/')) {
        pkg = packageName(specifier);
      }
      for (const rule of brokenRules({ fromRoom, toRoom, pkg, isTest })) {
        violations.push({
          file: path.relative(baseDir, file).split(path.sep).join('/'),
          line,
          specifier,
          fromRoom,
          toRoom: toRoom ?? pkg,
          rule,
        });
      }
    }
  }
  return violations;
}

/** `src/providers/x.ts:3 imports ../http/y.js (providers never import http)` */
export function formatViolation(v) {
  return `${v.file}:${v.line} imports ${v.specifier} (${v.rule})`;
}
