import { z } from 'zod';
import { InvalidCursorError } from './api-error.js';

/**
 * Opaque cursors (Stripe-style "starting_after", but not guessable as an id): base64url JSON of
 * the last id seen. Ids are time-sortable, so keyset pagination by id is stable under inserts.
 */
const cursorSchema = z.object({ a: z.string().min(1).max(64) });

export function encodeCursor(afterId: string): string {
  return Buffer.from(JSON.stringify({ a: afterId }), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  try {
    const parsed = cursorSchema.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    if (parsed.success) return parsed.data.a;
  } catch {
    // fall through
  }
  throw new InvalidCursorError();
}

export const paginationQuery = z.strictObject({
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(25),
});

export function page<T extends { id: string }>(rows: T[], limit: number): { data: T[]; nextCursor: string | null } {
  const data = rows.slice(0, limit);
  return { data, nextCursor: rows.length > limit ? encodeCursor(data[data.length - 1]!.id) : null };
}
