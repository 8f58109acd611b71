// Where the shared, read-only material (mail corpus, ClamAV test signatures) lives: found relative
// to the checkout, never at a fixed absolute path. No vitest import: benchmarks use it too.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The shared material folder: `SHARED_DIR`, else `../shared` next to this checkout. */
export function sharedDir(): string {
  return process.env.SHARED_DIR ? resolve(process.env.SHARED_DIR) : resolve(REPO_ROOT, '..', 'shared');
}

/** A path inside the shared folder. */
export function sharedPath(...parts: string[]): string {
  return join(sharedDir(), ...parts);
}

/** The mail corpus: `MAIL_CORPUS_DIR`, else `<shared>/corpus`. */
export function corpusDir(): string {
  return process.env.MAIL_CORPUS_DIR ? resolve(process.env.MAIL_CORPUS_DIR) : sharedPath('corpus');
}
