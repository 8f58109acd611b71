import { z } from 'zod';
import type { SyncCursor } from '../providers/mail-provider.port.js';

/**
 * The stored, versioned cursor (`mailboxes.syncCursor`). Validated on every read: a cursor from
 * an unknown version or another provider is treated as absent (→ window resync), never misread.
 * A Graph link is additionally checked against the host allowlist by the adapter before use.
 */
export const syncCursorSchema = z.discriminatedUnion('provider', [
  z.strictObject({ v: z.literal(1), provider: z.literal('google'), historyId: z.string().regex(/^\d{1,30}$/) }),
  z.strictObject({
    v: z.literal(1),
    provider: z.literal('microsoft'),
    link: z.string().url().max(8192),
    inboxFolderId: z.string().regex(/^[A-Za-z0-9+/_=-]{1,512}$/).optional(),
  }),
]);

export function readSyncCursor(value: unknown, provider: 'google' | 'microsoft'): SyncCursor | null {
  const parsed = syncCursorSchema.safeParse(value);
  if (!parsed.success || parsed.data.provider !== provider) return null;
  return parsed.data;
}
