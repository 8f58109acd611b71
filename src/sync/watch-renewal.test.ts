import { describe, expect, it } from 'vitest';
import { GmailPush } from '../providers/google/gmail-push.js';
import { GraphPush } from '../providers/microsoft/graph-push.js';
import type { PushPort } from '../providers/ports.js';
import { renewalDue, renewalDueAt } from './watch-renewal.js';

const NOW = new Date('2026-03-10T12:00:00Z');
const H = 3_600_000;
const DAY = 24 * H;
const at = (ms: number) => new Date(NOW.getTime() + ms);
// The provider rule comes from the push port, not from the provider's name.
const gmail = { maxRenewalIntervalMs: new GmailPush({ watch: () => Promise.reject(new Error('unused')) }, 'topic').maxRenewalIntervalMs };
const graphPort: PushPort = new GraphPush({} as never);
const graph = { maxRenewalIntervalMs: graphPort.maxRenewalIntervalMs };

describe('renewalDueAt: from the expiration the provider returned', () => {
  it('Graph: 80 % of the granted lifetime, less up to 10 % jitter — for 7 days, 1 day (rich) or 1 hour alike', () => {
    for (const lifetime of [10_080 * 60_000, DAY, H]) {
      expect(renewalDueAt({ ...graph, expiresAt: at(lifetime), now: NOW, random: () => 0 }).getTime() - NOW.getTime()).toBe(Math.floor(0.8 * lifetime));
      expect(renewalDueAt({ ...graph, expiresAt: at(lifetime), now: NOW, random: () => 0.999999 }).getTime() - NOW.getTime()).toBeGreaterThanOrEqual(Math.floor(0.7 * lifetime));
    }
  });

  it('the push ports carry the rule: Gmail daily, Graph none', () => {
    expect(gmail.maxRenewalIntervalMs).toBe(DAY);
    expect(graph.maxRenewalIntervalMs).toBeUndefined();
  });

  it('Gmail: at most a day (Google recommends calling watch daily), sooner when the watch is shorter', () => {
    expect(renewalDueAt({ ...gmail, expiresAt: at(7 * DAY), now: NOW, random: () => 0 })).toEqual(at(DAY));
    expect(renewalDueAt({ ...gmail, expiresAt: at(7 * DAY), now: NOW, random: () => 0.5 })).toEqual(at(0.95 * DAY));
    expect(renewalDueAt({ ...gmail, expiresAt: at(10 * H), now: NOW, random: () => 0 })).toEqual(at(8 * H));
  });

  it('spreads mailboxes renewed together over the jitter window', () => {
    const times = new Set(Array.from({ length: 50 }, () => renewalDueAt({ ...graph, expiresAt: at(6 * DAY), now: NOW, random: Math.random }).getTime()));
    expect(times.size).toBeGreaterThan(40);
    for (const t of times) expect(t - NOW.getTime()).toBeGreaterThanOrEqual(0.7 * 6 * DAY - 1);
  });

  it('an expiration in the past (or now) is due now', () => {
    expect(renewalDueAt({ ...graph, expiresAt: at(-H), now: NOW, random: () => 0 })).toEqual(NOW);
    expect(renewalDueAt({ ...gmail, expiresAt: NOW, now: NOW, random: () => 0 })).toEqual(NOW);
  });
});

describe('renewalDue', () => {
  it('is due with no watch, a lapsed one, no renewal time, or a renewal time reached', () => {
    expect(renewalDue(null, null, NOW)).toBe(true);
    expect(renewalDue(at(H), at(-1), NOW)).toBe(true);
    expect(renewalDue(null, at(DAY), NOW)).toBe(true);
    expect(renewalDue(NOW, at(DAY), NOW)).toBe(true);
    expect(renewalDue(at(1), at(DAY), NOW)).toBe(false);
  });
});
