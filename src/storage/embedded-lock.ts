import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/**
 * PGlite admits one process per data folder. The process that opens it writes this lock file;
 * a second `serve` stops with a clear message, and CLI commands find the running service here
 * (port + a per-run admin token) and go through its HTTP API instead of opening the database.
 */
const lockSchema = z.object({
  pid: z.number().int().positive(),
  port: z.number().int().positive().optional(),
  adminToken: z.string().min(32),
  command: z.string(),
  startedAt: z.string(),
});
export type EmbeddedLockInfo = z.infer<typeof lockSchema>;

export class EmbeddedLockError extends Error {
  override readonly name = 'EmbeddedLockError';
  constructor(
    readonly holder: EmbeddedLockInfo,
    message: string,
  ) {
    super(message);
  }
}

function lockPath(dataDir: string): string {
  return path.resolve(dataDir, 'mailbox-connector.lock');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The live holder of the data folder, or undefined (a stale file from a crashed process is ignored). */
export function readEmbeddedLock(dataDir: string): EmbeddedLockInfo | undefined {
  let raw: string;
  try {
    raw = readFileSync(lockPath(dataDir), 'utf8');
  } catch {
    return undefined;
  }
  const parsed = lockSchema.safeParse(safeJson(raw));
  if (!parsed.success) return undefined;
  if (parsed.data.pid !== process.pid && !isAlive(parsed.data.pid)) return undefined;
  return parsed.data;
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

export interface EmbeddedLock {
  readonly info: EmbeddedLockInfo;
  setPort(port: number): void;
  release(): void;
}

export function acquireEmbeddedLock(dataDir: string, command: string): EmbeddedLock {
  mkdirSync(dataDir, { recursive: true });
  const file = lockPath(dataDir);
  const holder = readEmbeddedLock(dataDir);
  if (holder && holder.pid !== process.pid) {
    throw new EmbeddedLockError(
      holder,
      `the embedded database in ${path.resolve(dataDir)} is in use by "${holder.command}" (pid ${holder.pid}); ` +
        'stop it first, or set DATABASE_URL to run several processes against Postgres',
    );
  }
  const info: EmbeddedLockInfo = {
    pid: process.pid,
    adminToken: randomBytes(32).toString('base64url'),
    command,
    startedAt: new Date().toISOString(),
  };
  const write = (flag: 'w' | 'wx'): void => writeFileSync(file, JSON.stringify(info), { mode: 0o600, flag });
  // `wx` makes taking the lock atomic: of two processes starting together exactly one creates
  // the file. A file left by a crashed process (dead pid) is removed and the create retried once.
  try {
    write('wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const current = readEmbeddedLock(dataDir);
    if (current && current.pid !== process.pid) {
      throw new EmbeddedLockError(current, `the embedded database in ${path.resolve(dataDir)} is in use by "${current.command}" (pid ${current.pid})`);
    }
    rmSync(file, { force: true });
    write('wx');
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    const current = readEmbeddedLock(dataDir);
    if (current?.pid === process.pid) rmSync(file, { force: true });
  };
  process.once('exit', release);
  return {
    info,
    setPort(port) {
      info.port = port;
      write('w');
    },
    release,
  };
}
