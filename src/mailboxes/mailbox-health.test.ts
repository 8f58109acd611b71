import { describe, expect, it } from 'vitest';
import { pushHealth } from './mailbox-health.js';

const NOW = new Date('2026-03-10T12:00:00Z');
const at = (ms: number) => new Date(NOW.getTime() + ms);
const HOUR = 3_600_000;
const base = { status: 'active' as const, watchExpiresAt: at(5 * 24 * HOUR), subscriptionExpiresAt: null, lastPushAt: null, pushMissedAt: null };

describe('pushHealth', () => {
  it('tells the ops console which mailboxes are polled because push missed mail, until a notification arrives', () => {
    expect(pushHealth(base, NOW)).toBe('ok');
    expect(pushHealth({ ...base, pushMissedAt: at(-HOUR) }, NOW)).toBe('failing');
    expect(pushHealth({ ...base, pushMissedAt: at(-HOUR), lastPushAt: at(-2 * HOUR) }, NOW)).toBe('failing');
    expect(pushHealth({ ...base, pushMissedAt: at(-HOUR), lastPushAt: at(-60_000) }, NOW)).toBe('ok');
    expect(pushHealth({ ...base, watchExpiresAt: at(-1), pushMissedAt: at(-HOUR) }, NOW)).toBe('expired');
    expect(pushHealth({ ...base, watchExpiresAt: at(HOUR / 2) }, NOW)).toBe('expiring');
    expect(pushHealth({ ...base, watchExpiresAt: null }, NOW)).toBe('none');
    expect(pushHealth({ ...base, status: 'reauth_required' }, NOW)).toBe('inactive');
  });
});
