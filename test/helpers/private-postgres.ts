// A Postgres server of the test's own (initdb into a temp folder, pg_ctl on a free port), for
// tests that restart or stop the server under a running service — never the shared one.
//
//   const reason = privatePostgresUnavailableReason();   // null when it can run here
//   const pg = await startPrivatePostgres();              // { url, restart('fast'|'immediate'), ... }
//   await pg.stop();                                       // in afterAll
//
// initdb refuses to run as root: as root, every server command runs as the `postgres` user
// (`runuser -u postgres --`) on a folder owned by it.
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './test-service.js';

const run = promisify(execFile);

/** The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl (or PG_BIN_DIR). */
export function postgresBinDir(): string | null {
  const candidates = process.env.PG_BIN_DIR
    ? [process.env.PG_BIN_DIR]
    : (existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql') : [])
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => `/usr/lib/postgresql/${v}/bin`);
  return candidates.find((d) => existsSync(path.join(d, 'initdb')) && existsSync(path.join(d, 'pg_ctl'))) ?? null;
}

function postgresUid(): { uid: number; gid: number } | null {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('postgres:'));
    if (!line) return null;
    const [, , uid, gid] = line.split(':');
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return null;
  }
}

const isRoot = (): boolean => process.getuid?.() === 0;

/** Why a private Postgres cannot start here, or null when it can. */
export function privatePostgresUnavailableReason(): string | null {
  if (!postgresBinDir()) return 'Postgres server binaries not found (/usr/lib/postgresql/*/bin; apt-get install postgresql, or set PG_BIN_DIR)';
  if (isRoot()) {
    if (!postgresUid()) return 'running as root but there is no `postgres` user to run initdb as';
    if (!existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser') && !existsSync('/usr/bin/runuser')) return 'running as root and `runuser` is missing';
  }
  return null;
}

export interface PrivatePostgres {
  /** URL of the database created for the test (superuser `root`, trust auth). */
  url: string;
  /** URL of the `postgres` maintenance database. */
  adminUrl: string;
  port: number;
  /** `pg_ctl restart -m <mode>`; resolves once the server accepts connections again. */
  restart(mode: 'fast' | 'immediate'): Promise<void>;
  /** `pg_ctl stop -m fast`: the server is down until startServer(). */
  stopServer(): Promise<void>;
  startServer(): Promise<void>;
  /** Terminates every backend connected to the test database (except the caller's own); returns how many. */
  terminateConnections(): Promise<number>;
  /** Stops the server and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startPrivatePostgres(opts: { database?: string } = {}): Promise<PrivatePostgres> {
  const reason = privatePostgresUnavailableReason();
  if (reason) throw new Error(reason);
  const bin = postgresBinDir()!;
  const root = mkdtempSync(path.join(tmpdir(), 'mbc-pg-'));
  const dataDir = path.join(root, 'data');
  const logFile = path.join(root, 'server.log');
  mkdirSync(dataDir, { mode: 0o700 });
  const owner = isRoot() ? postgresUid() : null;
  if (owner) {
    chownSync(root, owner.uid, owner.gid);
    chownSync(dataDir, owner.uid, owner.gid);
  }
  const asServer = (cmd: string, args: string[]) =>
    owner ? run('runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args], { timeout: 120_000 }) : run(path.join(bin, cmd), args, { timeout: 120_000 });

  const port = await freePort();
  const database = opts.database ?? 'mbc';
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await asServer('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await asServer('initdb', ['-D', dataDir, '-U', 'root', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    // The socket lives in our folder (the system one may not be writable); TCP on loopback only.
    // fsync=off only risks data on an OS crash; synchronous_commit stays on, because `restart -m
    // immediate` is a server crash and must not lose a commit the service was told succeeded.
    const serverOpts = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`;
    await asServer('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', serverOpts, '-w', '-t', '60', 'start']);
    const adminUrl = `postgresql://root@127.0.0.1:${port}/postgres`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${database}`);
    } finally {
      await admin.end();
    }
    return {
      url: `postgresql://root@127.0.0.1:${port}/${database}`,
      adminUrl,
      port,
      async restart(mode) {
        // pg_ctl restart reuses the options the server was started with (postmaster.opts).
        await asServer('pg_ctl', ['-D', dataDir, '-l', logFile, '-m', mode, '-w', '-t', '60', 'restart']);
      },
      async stopServer() {
        await asServer('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop']);
      },
      async startServer() {
        await asServer('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', serverOpts, '-w', '-t', '60', 'start']);
      },
      async terminateConnections() {
        const c = new pg.Client({ connectionString: adminUrl });
        await c.connect();
        try {
          const res = await c.query<{ pid: number }>('SELECT pg_terminate_backend(pid) AS ok, pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
          return res.rows.length;
        } finally {
          await c.end();
        }
      },
      stop,
    };
  } catch (err) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '';
    await stop();
    throw new Error(`private Postgres failed to start: ${(err as Error).message}\n${log}`, { cause: err });
  }
}
