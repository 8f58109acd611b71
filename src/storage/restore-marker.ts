import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/**
 * Written by `mailbox-connector restore` before it replaces anything and removed when the restore
 * has destroyed again every shredded key and held the old events. While it exists the service
 * refuses to start: a restore interrupted half-way may have brought back keys of purged
 * mailboxes. It carries the shred ledger read from the key store being replaced, so running the
 * restore again still knows every owner shredded since the backup.
 */
const markerSchema = z.object({
  startedAt: z.string(),
  from: z.string(),
  ledger: z.array(z.object({ ownerType: z.enum(['tenant', 'mailbox', 'system']), ownerId: z.string().min(1), shreddedAt: z.string() })),
});
export type RestoreMarker = z.infer<typeof markerSchema>;

function markerPath(dataDir: string): string {
  return path.resolve(dataDir, 'restore-pending.json');
}

export class RestorePendingError extends Error {
  override readonly name = 'RestorePendingError';
}

/** The marker of an unfinished restore, if any; a marker that cannot be read counts as one. */
export function readRestoreMarker(dataDir: string): RestoreMarker | 'unreadable' | undefined {
  let raw: string;
  try {
    raw = readFileSync(markerPath(dataDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return 'unreadable';
  }
  try {
    const parsed = markerSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

export function assertNoRestorePending(dataDir: string): void {
  const marker = readRestoreMarker(dataDir);
  if (!marker) return;
  const from = marker === 'unreadable' ? 'its backup folder' : marker.from;
  throw new RestorePendingError(
    `a restore did not finish (${markerPath(dataDir)}): run "mailbox-connector restore --from ${from}" again before starting; ` +
      'until it finishes, purged mailboxes could be readable again',
  );
}

export function writeRestoreMarker(dataDir: string, marker: RestoreMarker): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(markerPath(dataDir), JSON.stringify(marker), { mode: 0o600 });
}

export function clearRestoreMarker(dataDir: string): void {
  rmSync(markerPath(dataDir), { force: true });
}
