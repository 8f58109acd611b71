import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// docs/limited-use.md maps each Limited Use / Microsoft / GDPR requirement to code and tests.
// This keeps the map honest: every cited file exists and every cited test name is a test there.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const doc = readFileSync(join(root, 'docs/limited-use.md'), 'utf8');

/** `file.test.ts` › `test name` pairs, in order of appearance. */
export function testReferences(markdown: string): Array<{ file: string; name: string }> {
  return [...markdown.matchAll(/`((?:src|test)\/[^`\s]+\.test\.ts)` › `([^`]+)`/g)].map((m) => ({ file: m[1]!, name: m[2]! }));
}

/** Why a reference does not resolve, or null when the file has a test (it/test) with exactly that name. */
export function brokenReference(ref: { file: string; name: string }, readFile: (path: string) => string | undefined): string | null {
  const text = readFile(ref.file);
  if (text === undefined) return `${ref.file} does not exist`;
  const quoted = [`'${ref.name}'`, `"${ref.name}"`, `\`${ref.name}\``];
  const declared = quoted.some((q) => new RegExp(`\\b(?:it|test)(?:\\.[a-zA-Z]+(?:\\([^)]*\\))?)?\\(\\s*${escapeRegExp(q)}`).test(text));
  return declared ? null : `${ref.file} has no test named "${ref.name}"`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const readRepoFile = (path: string): string | undefined => {
  const full = join(root, path);
  return existsSync(full) ? readFileSync(full, 'utf8') : undefined;
};

describe('docs/limited-use.md', () => {
  it('cites only test files and test names that exist', () => {
    const refs = testReferences(doc);
    expect(refs.length).toBeGreaterThanOrEqual(25);
    expect(refs.map((r) => brokenReference(r, readRepoFile)).filter(Boolean)).toEqual([]);
  });

  it('cites only code files that exist', () => {
    const code = [...doc.matchAll(/`(src\/[^`\s]+\.ts)`/g)].map((m) => m[1]!).filter((p) => !p.endsWith('.test.ts'));
    expect(code.length).toBeGreaterThanOrEqual(15);
    expect(code.filter((p) => !existsSync(join(root, p)))).toEqual([]);
  });

  it('covers every requirement it promises, each with at least one test', () => {
    const rows = doc.split('\n').filter((l) => l.startsWith('| **'));
    const required = [
      'Allowed use', 'Transfers', 'Human reading', 'No advertising', 'No AI/ML training',
      'least privilege', 'No sale, no advertising', 'delete when no longer needed',
      'Access', 'portability', 'Erasure', 'Rectification', 'Restriction', 'objection', 'Purge within 30 days', 'Backups kept at most a year',
    ];
    for (const requirement of required) {
      const row = rows.find((r) => r.split('|')[1]!.includes(requirement));
      expect(row, requirement).toBeDefined();
      expect(testReferences(row!).length, requirement).toBeGreaterThan(0);
    }
  });

  it('the checker itself rejects a renamed test and a missing file', () => {
    const file = 'test/integration/purge.test.ts';
    expect(brokenReference({ file, name: 'a test that was never written' }, readRepoFile)).toMatch(/has no test named/);
    expect(brokenReference({ file: 'test/integration/nope.test.ts', name: 'x' }, readRepoFile)).toMatch(/does not exist/);
    // A name that only appears in a comment or string, not as a test, does not count.
    expect(brokenReference({ file: 'f.test.ts', name: 'abc' }, () => "// 'abc'\nconst s = 'abc';")).not.toBeNull();
    expect(brokenReference({ file: 'f.test.ts', name: 'abc' }, () => "  it.skipIf(x)('abc', () => {})")).toBeNull();
  });
});
