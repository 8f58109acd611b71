// External things some tests need (clamd, Chromium, the shared corpus, Postgres, Postgres server
// binaries: test/helpers/private-postgres.ts gives the reason), and the one rule for when they are missing: locally the tests skip and say why; in
// CI (`CI=true`) a missing dependency is a failure, never a silent skip.
//
//   describe.skipIf(missing('clamd', clamdUnavailableReason()))('…', () => { … });
//   it.skipIf(missing('Postgres', usesPostgres() ? null : 'DATABASE_URL is not set'))('…', …);
//
// `missing` registers one extra test in the current scope that carries the reason: skipped
// locally (so the reason shows in the report), failing in CI (so the run is red and says what is
// missing). Call it where the guarded tests are defined (module top level or inside a describe).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { it, type TestContext } from 'vitest';
import { corpusDir } from './shared-dir.js';

/** True when running in CI (`CI=true`, or any value other than empty/`false`/`0`). */
export function inCi(): boolean {
  const v = process.env.CI?.trim().toLowerCase();
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
}

/**
 * Returns true when the guarded tests must be skipped (dependency missing, local run). When the
 * dependency is missing in CI it returns true as well, but registers a failing test naming the
 * dependency and the reason, so the run fails with a clear message instead of a cascade of errors.
 */
export function missing(dependency: string, reason: string | null | undefined): boolean {
  if (reason === null || reason === undefined || reason === '') return false;
  const title = `${dependency} is available`;
  if (inCi()) {
    it(`${title} (required in CI)`, () => {
      throw new Error(`${dependency} is required when CI=true, but ${reason}`);
    });
  } else {
    it.skip(`${title} — skipped locally: ${reason}`, () => {});
  }
  return true;
}

/** Why a corpus file or folder cannot be used, or null when it exists. */
export function corpusMissingReason(...parts: string[]): string | null {
  const p = join(corpusDir(), ...parts);
  return existsSync(p) ? null : `the shared corpus is not at ${p} (set SHARED_DIR or MAIL_CORPUS_DIR)`;
}

/** True when the tests run against Postgres (`DATABASE_URL` set) rather than the embedded database. */
export function usesPostgres(): boolean {
  return Boolean(process.env.DATABASE_URL);
}

/**
 * For tests that only mean something on Postgres (pg_dump, several processes on one database):
 * true on an embedded run (`DATABASE_URL` unset), with a skipped entry saying so. This is a choice
 * of run, not a missing dependency — CI runs the whole suite on Postgres as well — so it does not
 * fail in CI. A Postgres that is configured but unreachable fails the tests themselves.
 */
export function embeddedRun(what: string): boolean {
  if (usesPostgres()) return false;
  it.skip(`${what} — runs on Postgres only (DATABASE_URL is not set: embedded run)`, () => {});
  return true;
}

/**
 * Inside a running test: returns when `reason` is null; otherwise skips the test with the reason
 * locally and fails it in CI.
 */
export function requireInTest(ctx: TestContext, dependency: string, reason: string | null | undefined): void {
  if (reason === null || reason === undefined || reason === '') return;
  if (inCi()) throw new Error(`${dependency} is required when CI=true, but ${reason}`);
  ctx.skip(`${dependency} unavailable: ${reason}`);
}
