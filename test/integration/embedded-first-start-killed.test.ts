import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/test-service.js';

// `npm start` stopped hard during its first start (Ctrl-C, an orchestrator's kill -9) while the
// embedded database folders are being created: the next start must work. Before
// src/storage/pglite-folder.ts the folder kept part of the cluster and no PG_VERSION, and every
// later start failed with "error: [object Object]" until the folder was deleted by hand.
const BIN = path.resolve('bin/mailbox-connector.js');
const roots: string[] = [];
const children: ChildProcess[] = [];

const env = (dataDir: string, port: number): NodeJS.ProcessEnv => {
  const e: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', NODE_ENV: 'development' };
  delete e.DATABASE_URL; // the embedded default
  delete e.ENCRYPTION_KEYS;
  delete e.CLAMD_SOCKET;
  return e;
};

function serve(dataDir: string, port: number, output: string[]): ChildProcess {
  const child = spawn(process.execPath, [BIN, 'serve'], { env: env(dataDir, port), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
  return child;
}

/** Resolves once `check` holds (polled every few ms), or rejects when the child exits first. */
async function waitFor(child: ChildProcess, check: () => boolean, what: string, output: string[]): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (check()) return;
    if (child.exitCode !== null) throw new Error(`serve exited (${child.exitCode}) before ${what}: ${output.join('').slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 3));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function healthy(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
  } catch {
    return false;
  }
}

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

describe('the first start on the embedded database, killed part-way', () => {
  // The data database folder is created first, then the key store's.
  it.each(['pgdata', 'keystore'])('starts normally after a kill -9 while %s was being written', async (folder) => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'mbc-first-start-'));
    roots.push(dataDir);
    const output: string[] = [];
    const port = await freePort();
    const first = serve(dataDir, port, output);
    // Kill once the cluster's files are being written, under whichever name they are written.
    const writing = (): boolean => existsSync(path.join(dataDir, folder, 'base')) || existsSync(path.join(dataDir, `${folder}.creating`, 'base'));
    await waitFor(first, writing, `${folder} being written`, output);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    // Under its final name a folder is complete or absent.
    const final = path.join(dataDir, folder);
    expect(!existsSync(final) || existsSync(path.join(final, 'PG_VERSION')), `${folder} left incomplete: ${existsSync(final) ? readdirSync(final).join(' ') : ''}`).toBe(true);

    const port2 = await freePort();
    const second = serve(dataDir, port2, output);
    const deadline = Date.now() + 120_000;
    while (!(await healthy(port2))) {
      if (second.exitCode !== null) throw new Error(`the next start failed (${second.exitCode}): ${output.join('').slice(-3000)}`);
      if (Date.now() > deadline) throw new Error('the next start did not come up');
      await new Promise((r) => setTimeout(r, 200));
    }
    const ready = (await (await fetch(`http://127.0.0.1:${port2}/readyz`)).json()) as { checks: Record<string, { status: string } | undefined> };
    expect(ready.checks.database?.status).toBe('ok');
    expect(ready.checks.keystore?.status).toBe('ok');
    expect(existsSync(path.join(final, 'PG_VERSION'))).toBe(true);
    expect(existsSync(`${final}.creating`)).toBe(false);
    second.kill('SIGTERM');
    expect(await new Promise((r) => second.once('exit', r))).toBe(0);
  }, 240_000);
});
