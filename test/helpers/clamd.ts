import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedPath } from './shared-dir.js';

/**
 * Starts a private clamd for integration tests, or uses the one CI started (CLAMD_SOCKET).
 * The signature DB is the EICAR-only test database in <shared>/clamav (see its README; `../shared`
 * next to the checkout, or SHARED_DIR, or CLAMAV_TEST_DB):
 * no machine here can download the official CVDs.
 */
export interface ClamdHandle {
  socket: string;
  /** StreamMaxLength of this clamd in bytes (null: an external clamd that did not say). */
  streamMaxBytes: number | null;
  /** Stops clamd (no-op for an external one). Safe to call twice. */
  stop(): Promise<void>;
  /** Starts it again with the same config (after stop()). */
  start(): Promise<void>;
  /** True when this helper owns the process (stop/start work). */
  owned: boolean;
}

const CLAMD_BIN = process.env.CLAMD_BIN ?? '/usr/sbin/clamd';
const SIGNATURE_DIR = process.env.CLAMAV_TEST_DB ?? sharedPath('clamav');

/** Why clamd tests cannot run here, or null when they can. */
export function clamdUnavailableReason(options: { forcePrivate?: boolean } = {}): string | null {
  if (process.env.CLAMD_SOCKET && !options.forcePrivate) return null;
  if (!existsSync(CLAMD_BIN)) return `clamd is not installed (${CLAMD_BIN} missing; apt-get install clamav-daemon)`;
  if (!existsSync(join(SIGNATURE_DIR, 'test-signatures.ndb'))) return `ClamAV test signatures missing in ${SIGNATURE_DIR}`;
  return null;
}

export function pingClamd(socket: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const client = connect({ path: socket });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      client.destroy();
      resolve(false);
    }, timeoutMs);
    client.on('connect', () => client.end('zPING\0'));
    client.on('data', (c: Buffer) => chunks.push(c));
    client.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    client.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString().replace(/\0/g, '').trim() === 'PONG');
    });
  });
}

export async function startClamd(
  options: { streamMaxLength?: string; forcePrivate?: boolean } = {},
): Promise<ClamdHandle> {
  const external = process.env.CLAMD_SOCKET;
  if (external && !options.forcePrivate) {
    // CI starts one clamd and exports its StreamMaxLength (.ci/run: CLAMD_STREAM_MAX_LENGTH).
    const limit = process.env.CLAMD_STREAM_MAX_LENGTH;
    return {
      socket: external,
      streamMaxBytes: limit ? parseSize(limit) : null,
      owned: false,
      stop: async () => {},
      start: async () => {},
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'clamd-test-'));
  const socket = join(dir, 'clamd.sock');
  const pidFile = join(dir, 'clamd.pid');
  const streamMaxLength = options.streamMaxLength ?? '8M';
  const conf = join(dir, 'clamd.conf');
  writeFileSync(
    conf,
    [
      `DatabaseDirectory ${SIGNATURE_DIR}`,
      `LocalSocket ${socket}`,
      `PidFile ${pidFile}`,
      // Foreground so the child process IS clamd and we can stop it by its pid.
      'Foreground true',
      `StreamMaxLength ${streamMaxLength}`,
      `LogFile ${join(dir, 'clamd.log')}`,
      'User root',
      'MaxThreads 2',
      'ScanMail true',
      'ScanArchive true',
    ].join('\n') + '\n',
  );

  let child: ReturnType<typeof spawn> | null = null;

  const start = async (): Promise<void> => {
    if (child) return;
    const proc = spawn(CLAMD_BIN, ['-c', conf], { stdio: 'ignore' });
    child = proc;
    proc.once('exit', () => {
      if (child === proc) child = null;
    });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (await pingClamd(socket, 500)) return;
      if (!child) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const log = existsSync(join(dir, 'clamd.log')) ? readFileSync(join(dir, 'clamd.log'), 'utf8').slice(-2000) : '';
    throw new Error(`clamd did not answer PING on ${socket}\n${log}`);
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
    child = null;
    rmSync(socket, { force: true });
  };

  await start();
  return {
    socket,
    streamMaxBytes: parseSize(streamMaxLength),
    owned: true,
    start,
    stop: async () => {
      await stop();
    },
  };
}

export async function disposeClamd(handle: ClamdHandle): Promise<void> {
  await handle.stop();
  if (handle.owned) rmSync(join(handle.socket, '..'), { recursive: true, force: true });
}

function parseSize(value: string): number {
  const m = /^(\d+)([KM]?)$/i.exec(value.trim());
  if (!m) throw new Error(`bad size ${value}`);
  const n = Number(m[1]);
  const unit = m[2]!.toUpperCase();
  return unit === 'M' ? n * 1024 * 1024 : unit === 'K' ? n * 1024 : n;
}
