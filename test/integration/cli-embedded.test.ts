import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/test-service.js';

// Acceptance 1 of the foundation: `npm start` on the embedded database, the CLI working while it
// runs (through the running service), a second serve refused, a restart reusing data and key.
const BIN = path.resolve('bin/mailbox-connector.js');
const dataDir = mkdtempSync(path.join(tmpdir(), 'mbc-cli-'));
const env = (port: number): NodeJS.ProcessEnv => {
  const e: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', NODE_ENV: 'development' };
  delete e.DATABASE_URL; // this test is about the embedded default
  delete e.ENCRYPTION_KEYS;
  delete e.CLAMD_SOCKET;
  return e;
};
const children: ChildProcess[] = [];
// The service's own output, shown when an assertion fails (it names why a process died).
const output: string[] = [];
const tail = (): string => output.join('').slice(-4000);

async function startServe(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'serve'], { env: env(port), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}: ${tail()}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('serve did not come up');
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  child.kill('SIGTERM');
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

function cli(port: number, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: env(port), encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the CLI on the embedded database', () => {
  it('serves, lets the CLI work through the running service, refuses a second serve, and restarts with the same data and key', async () => {
    const port = await freePort();
    const serve = await startServe(port);

    const ready = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { checks: Record<string, { status: string } | undefined> };
    expect(ready.checks.database!.status).toBe('ok');
    expect(ready.checks.scanner?.status ?? 'not_configured').toBe('not_configured');
    expect(existsSync(path.join(dataDir, 'encryption-keys'))).toBe(true);
    const keyFile = readFileSync(path.join(dataDir, 'encryption-keys'), 'utf8');

    const created = cli(port, '--json', 'tenants', 'create', '--name', 't');
    expect(created.status, created.stderr).toBe(0);
    const { tenantId, apiKey } = JSON.parse(created.stdout) as { tenantId: string; apiKey: string };
    expect(tenantId).toMatch(/^ten_/);
    const list = await fetch(`http://127.0.0.1:${port}/v1/mailboxes`, { headers: { authorization: `Bearer ${apiKey}` } }).catch((err: unknown) => {
      throw new Error(`service did not answer (${String(err)}); its output: ${tail()}`);
    });
    expect(list.status).toBe(200);

    const second = cli(port, 'serve');
    expect(second.status).not.toBe(0);
    expect(second.stderr).toMatch(/in use by "mailbox-connector serve" \(pid \d+\)/);

    const bad = cli(port, '--json', 'api-keys', 'revoke', 'key_nope');
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout).error.message).toMatch(/no active API key/);

    expect(await stop(serve)).toBe(0);
    const again = await startServe(port);
    const after = await fetch(`http://127.0.0.1:${port}/v1/mailboxes`, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(after.status).toBe(200);
    expect(readFileSync(path.join(dataDir, 'encryption-keys'), 'utf8')).toBe(keyFile);
    await stop(again);

    // With nothing running, the CLI opens the embedded database itself.
    const direct = cli(port, '--json', 'tenants', 'list');
    expect(direct.status, direct.stderr).toBe(0);
    expect(JSON.parse(direct.stdout).map((t: { tenantId: string }) => t.tenantId)).toContain(tenantId);
  }, 400_000);
});
