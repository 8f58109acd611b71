import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedFromPgliteTemplate } from '../helpers/pglite-template.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { postgresTemplateName } from '../helpers/postgres-template.js';
import { freePort, testEncryptionKeys } from '../helpers/test-service.js';

// User mistakes on the command line: one line on stderr naming the problem, a non-zero exit, no
// stack trace, no help page (issue 11, items 6, 7 and 8). Each case runs the real binary.
const BIN = path.resolve('bin/mailbox-connector.js');
const work = mkdtempSync(path.join(tmpdir(), 'mbc-cli-errors-'));
let db: TestDatabase | undefined;
// One key ring for every run against the shared database (a database's data keys are wrapped by it).
const keys = testEncryptionKeys();

/** The environment of a user's shell: nothing of the test runner's service settings. */
function baseEnv(extra: Record<string, string> = {}, unset: string[] = []): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'development', LOG_LEVEL: 'warn', HOST: '127.0.0.1', ...extra };
  for (const k of ['DATABASE_URL', 'ENCRYPTION_KEYS', 'CLAMD_SOCKET', 'PORT', 'DATA_DIR']) if (!(k in extra)) delete e[k];
  for (const k of unset) delete e[k];
  return e;
}

/**
 * Where the service keeps its data: a copy of the suite's migrated template (a Postgres database
 * in CI, else an embedded folder), so the first command does not create and migrate it.
 */
function storageEnv(name: string): Record<string, string> {
  if (db) return { DATABASE_URL: db.url };
  const dataDir = path.join(work, name);
  seedFromPgliteTemplate(dataDir);
  return { DATA_DIR: dataDir };
}

function cli(args: string[], opts: { env?: Record<string, string>; unset?: string[]; cwd?: string; timeout?: number } = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: baseEnv(opts.env, opts.unset), cwd: opts.cwd ?? work, encoding: 'utf8', timeout: opts.timeout ?? 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One `error: …` line and nothing else (no stack, no help text). */
function expectOneLineError(r: { status: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.status, r.stderr).not.toBe(0);
  expect(r.status).not.toBeNull();
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at |Usage:/);
}

beforeAll(async () => {
  if (process.env.DATABASE_URL) db = await createTestDatabase({ template: postgresTemplateName() });
});
afterAll(async () => {
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

describe('command-line mistakes', () => {
  it('names an unknown command instead of treating it as an argument of serve', () => {
    const r = cli(['frobnicate']);
    expectOneLineError(r, /unknown command 'frobnicate'/);
    expect(r.stderr).toMatch(/commands: serve, worker, migrate/);
  });

  it('rejects serve --port abc at once, before opening anything', () => {
    const dataDir = path.join(work, 'port-abc');
    const started = Date.now();
    const r = cli(['serve', '--port', 'abc'], { env: { DATA_DIR: dataDir } });
    expectOneLineError(r, /--port.*'abc' is invalid.*whole number from 0 to 65535/);
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(existsSync(dataDir)).toBe(false);
    expectOneLineError(cli(['serve', '--port', '70000'], { env: { DATA_DIR: dataDir } }), /'70000' is invalid/);
  });

  it('asks for what is missing when events replay gets neither an id nor --since', () => {
    expectOneLineError(cli(['events', 'replay'], { env: { DATA_DIR: path.join(work, 'replay') } }), /give the event id to replay, or --since <iso>/);
    expectOneLineError(cli(['events', 'replay', 'evt_1', '--since', '2026-01-01T00:00:00Z'], { env: { DATA_DIR: path.join(work, 'replay') } }), /not both/);
  });

  it('rejects --block-remote-images with anything but yes/no, before touching the database', () => {
    const dataDir = path.join(work, 'block-images');
    expectOneLineError(cli(['tenants', 'update', 'ten_1', '--block-remote-images', 'maybe'], { env: { DATA_DIR: dataDir, ENCRYPTION_KEYS: keys } }), /--block-remote-images takes yes or no, not "maybe"/);
    expectOneLineError(cli(['tenants', 'create', '--name', 'A', '--block-remote-images', '1'], { env: { DATA_DIR: dataDir, ENCRYPTION_KEYS: keys } }), /takes yes or no/);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('refuses an ops input holding a NUL byte before touching the database', () => {
    const dataDir = path.join(work, 'nul-input');
    const r = cli(['ops', 'tenants.create', '{"name":"a\\u0000b"}'], { env: { DATA_DIR: dataDir, ENCRYPTION_KEYS: keys } });
    expectOneLineError(r, /^error: name: must not contain a NUL byte$/);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('rejects a malformed ENCRYPTION_KEYS before the database is opened or migrated, without echoing it', async () => {
    const secretish = 'not-a-key-at-all';
    // An empty database (not the template copy): the test shows nothing was created in it.
    const empty = db ? await createTestDatabase() : undefined;
    try {
      const storage: Record<string, string> = empty ? { DATABASE_URL: empty.url } : { DATA_DIR: path.join(work, 'bad-keys') };
      const r = cli(['migrate'], { env: { ...storage, ENCRYPTION_KEYS: `1:${secretish}` } });
      expectOneLineError(r, /invalid configuration: ENCRYPTION_KEYS entry #1 \(version 1\)/);
      expect(r.stderr).not.toContain(secretish);
      if (empty) {
        const c = new pg.Client({ connectionString: empty.url });
        await c.connect();
        try {
          const { rows } = await c.query<{ n: string }>("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'");
          expect(Number(rows[0]!.n)).toBe(0);
        } finally {
          await c.end();
        }
      } else {
        expect(existsSync(storage.DATA_DIR!)).toBe(false);
      }
    } finally {
      await empty?.drop();
    }
  }, 60_000);

  it('answers mailboxes resync of an unknown id with one line and exit 1', () => {
    const r = cli(['mailboxes', 'resync', 'mbx_does_not_exist'], { env: { ...storageEnv('shared'), ENCRYPTION_KEYS: keys } });
    expectOneLineError(r, /^error: mailbox not found$/);
  }, 120_000);

  describe('a port already in use', () => {
    let blocker: Server;
    let port: number;
    beforeAll(async () => {
      port = await freePort();
      blocker = createServer();
      await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    });
    afterAll(async () => new Promise<void>((resolve) => blocker.close(() => resolve())));

    it('stops serve with one line naming the port and the setting, and a non-zero exit', () => {
      // Same storage as the resync case: the second start also proves a start that failed this way
      // leaves the (embedded) database usable.
      const viaEnv = cli(['serve'], { env: { ...storageEnv('shared'), ENCRYPTION_KEYS: keys, PORT: String(port) } });
      expectOneLineError(viaEnv, new RegExp(`port ${port} is already in use \\(PORT\\)`));
      expect(viaEnv.stdout).not.toMatch(/listening/);
      const viaFlag = cli(['serve', '--port', String(port)], { env: { ...storageEnv('shared'), ENCRYPTION_KEYS: keys } });
      expectOneLineError(viaFlag, new RegExp(`port ${port} is already in use \\(--port\\)`));
    }, 240_000);
  });
});

describe('.env in the working directory', () => {
  const dir = path.join(work, 'dotenv-cwd');
  const dataDir = path.join(dir, 'data-from-dotenv');
  beforeAll(() => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, '.env'), ['# written by the test', `DATA_DIR="${dataDir}"`, 'LOG_LEVEL=loud', ''].join('\n'));
  });

  it('is read: its values apply when the environment does not set them', () => {
    // The file's LOG_LEVEL=loud is invalid: the command stopping on it proves the file was read.
    const r = cli(['tenants', 'list'], { cwd: dir, unset: ['LOG_LEVEL'] });
    expectOneLineError(r, /^error: invalid configuration: LOG_LEVEL must be one of: fatal, error/);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('loses to the real environment: a variable set there wins over the file', () => {
    const r = cli(['--json', 'tenants', 'list'], { cwd: dir, env: { LOG_LEVEL: 'warn' } });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
    // DATA_DIR came from the file (the embedded database was created there).
    expect(readdirSync(dataDir).length).toBeGreaterThan(0);
  }, 120_000);
});
