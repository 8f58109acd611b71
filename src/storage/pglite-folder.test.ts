import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { EmbeddedDatabaseOpenError, openPGliteFolder } from './pglite-folder.js';

// An embedded database folder only ever exists complete under its final name, so that a first
// start stopped part-way does not break every later start (pglite-folder.ts).

const root = mkdtempSync(path.join(tmpdir(), 'mbc-pglite-folder-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDir = (): string => path.join(root, `case${++n}`, 'pgdata');

/** A folder as an interrupted first start left it before: the cluster's files, no PG_VERSION. */
async function interruptedFolder(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const lite = await PGlite.create(dir);
  await lite.close();
  rmSync(path.join(dir, 'PG_VERSION'));
  rmSync(path.join(dir, 'postgresql.conf'));
}

describe('openPGliteFolder', () => {
  it('creates a new folder under a temporary name and moves it into place complete', async () => {
    const dir = newDir();
    const seen: string[] = [];
    // Watch the final name while the cluster is being created: it must never exist incomplete.
    const poll = setInterval(() => {
      if (existsSync(dir)) seen.push(existsSync(path.join(dir, 'PG_VERSION')) ? 'complete' : 'incomplete');
    }, 2);
    let lite: PGlite;
    try {
      lite = await openPGliteFolder(dir);
    } finally {
      clearInterval(poll);
    }
    expect(seen).not.toContain('incomplete');
    expect(existsSync(path.join(dir, 'PG_VERSION'))).toBe(true);
    expect(existsSync(`${dir}.creating`)).toBe(false);
    expect((await lite.query<{ x: number }>('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
    await lite.close();
  });

  it('opens an existing folder in place, with its data', async () => {
    const dir = newDir();
    const first = await openPGliteFolder(dir);
    await first.exec("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')");
    await first.close();
    const warn = vi.fn();
    const again = await openPGliteFolder(dir, warn);
    expect((await again.query<{ v: string }>('SELECT v FROM kept')).rows).toEqual([{ v: 'still here' }]);
    await again.close();
    expect(warn).not.toHaveBeenCalled();
    expect(readdirSync(path.dirname(dir))).toEqual(['pgdata']);
  });

  it('replaces a half-made temporary folder of an earlier interrupted attempt', async () => {
    const dir = newDir();
    mkdirSync(`${dir}.creating/base`, { recursive: true });
    writeFileSync(`${dir}.creating/base/leftover`, 'x');
    const lite = await openPGliteFolder(dir);
    expect((await lite.query<{ x: number }>('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
    await lite.close();
    expect(readdirSync(path.dirname(dir))).toEqual(['pgdata']);
  });

  it('moves a folder an interrupted first start left (no PG_VERSION) aside, names it, and starts a new one', async () => {
    const dir = newDir();
    await interruptedFolder(dir);
    // The premise: PGlite itself cannot open such a folder (it throws an ErrnoError without a message).
    const failed = await PGlite.create(dir).then(
      async (l) => {
        await l.close();
        return null;
      },
      (err: unknown) => err,
    );
    expect(failed).not.toBeNull();
    expect(failed).not.toBeInstanceOf(Error);
    rmSync(dir, { recursive: true, force: true }); // that attempt wrote into it: the same fixture again
    await interruptedFolder(dir);

    const before = readdirSync(dir).sort();
    const warn = vi.fn();
    const lite = await openPGliteFolder(dir, warn);
    expect((await lite.query<{ x: number }>('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
    await lite.close();

    const aside = readdirSync(path.dirname(dir)).filter((f) => f.startsWith('pgdata.incomplete-'));
    expect(aside).toHaveLength(1);
    // Nothing is deleted: the old folder is kept whole under its new name.
    expect(readdirSync(path.join(path.dirname(dir), aside[0]!)).sort()).toEqual(before);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toContain(dir);
    expect(warn.mock.calls[0]![0]).toContain(path.join(path.dirname(dir), aside[0]!));
  });

  it('fails with a clear error naming the folder when it cannot be created', async () => {
    const parent = path.join(root, `case${++n}`);
    mkdirSync(parent);
    writeFileSync(path.join(parent, 'pgdata'), 'a file, not a folder');
    const err = await openPGliteFolder(path.join(parent, 'pgdata')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbeddedDatabaseOpenError);
    expect((err as Error).message).toContain(`the embedded database in ${path.join(parent, 'pgdata')} could not be opened (`);
    expect((err as Error).message).not.toContain('[object Object]');
  });
});
