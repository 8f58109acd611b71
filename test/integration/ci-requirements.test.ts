// A test whose dependency is missing skips locally (saying why) and FAILS in CI, with the reason
// in the failure. Proven on a real test file run by vitest with the shared corpus pointed at a
// folder that does not exist.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NOWHERE = '/nonexistent/mbc-shared-corpus';

async function vitestOn(file: string, env: Record<string, string | undefined>): Promise<{ code: number; output: string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  try {
    const { stdout, stderr } = await run(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', '--reporter=verbose', file], { cwd: ROOT, env: childEnv, timeout: 120_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('missing dependencies', () => {
  it('locally: the corpus test is skipped and the report says why', async () => {
    const r = await vitestOn('test/corpus/corpus.test.ts', { CI: undefined, MAIL_CORPUS_DIR: NOWHERE });
    expect(r.code).toBe(0);
    expect(r.output).toContain(`skipped locally: the shared corpus is not at ${NOWHERE}`);
    expect(r.output).not.toMatch(/\d+ failed/);
  }, 150_000);

  it('in CI: the same run fails, naming the dependency and where it was looked for', async () => {
    const r = await vitestOn('test/corpus/corpus.test.ts', { CI: 'true', MAIL_CORPUS_DIR: NOWHERE });
    expect(r.code).not.toBe(0);
    expect(r.output).toContain(`the shared mail corpus is required when CI=true, but the shared corpus is not at ${NOWHERE}`);
    expect(r.output).toMatch(/1 failed/);
  }, 150_000);
});
