#!/usr/bin/env node
// `npm run check:imports` — enforces the import direction of ARCHITECTURE.md on src/.
// Usage: node scripts/check-imports.mjs [srcDir]   (default: <repo>/src)
// Prints one line per violation, `file:line imports X (rule)`, and exits 1 if there is any.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkImports, formatViolation } from './import-rules.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = path.resolve(process.argv[2] ?? path.join(repoRoot, 'src'));

const violations = await checkImports(srcDir, { baseDir: process.cwd() });
for (const v of violations) console.error(formatViolation(v));
if (violations.length > 0) {
  console.error(`check-imports: ${violations.length} import-direction violation(s)`);
  process.exit(1);
}
console.log(`check-imports: ${path.relative(process.cwd(), srcDir) || '.'} follows the import direction`);
