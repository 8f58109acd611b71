// What the ingest benches (ingest, ab, stages, encode-placement) share: the corpus sample they
// run over, reading thread and process CPU from /proc, a median, and an encoding key set.
import { createSecretKey, generateKeySync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { EncodeSpec } from '../../src/ingest/message-encoder.js';

/**
 * The Postgres server a bench creates its fresh databases on (DATABASE_URL; also the test
 * helpers' admin connection unless TEST_ADMIN_DATABASE_URL is set). Exits with a usage line
 * when it is not set.
 */
export function requireBenchPostgres(): string {
  const url = process.env.DATABASE_URL;
  if (!url) {
    console.error('set DATABASE_URL (a Postgres server on this host; fresh databases are created and dropped)');
    process.exit(1);
  }
  process.env.TEST_ADMIN_DATABASE_URL ??= url;
  return url;
}

/** An even spread of `size` items over `all` (every k-th), so every corpus folder is represented. */
export function evenSample<T>(all: readonly T[], size: number): T[] {
  const step = Math.max(1, Math.floor(all.length / size));
  return all.filter((_, i) => i % step === 0).slice(0, size);
}

const TICK_MS = 10; // USER_HZ = 100 on Linux

/** User + system CPU ms of a /proc `stat` file (a process or one thread); 0 when it is gone (or another host's). */
export function statCpuMs(path: string): number {
  try {
    const stat = readFileSync(path, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime, stime
  } catch {
    return 0;
  }
}

/** The median (of an even count, the mean of the two middle values). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** A data key and blind-index keys to encode with (not the service's: the benches store nothing with them). */
export function benchEncodeSpec(): EncodeSpec {
  return {
    dek: { version: 1, key: generateKeySync('aes', { length: 256 }) },
    blindKeys: { 'email-address': createSecretKey(Buffer.alloc(32, 1)), 'message-id': createSecretKey(Buffer.alloc(32, 2)) },
  };
}
