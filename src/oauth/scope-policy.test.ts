import { describe, expect, it } from 'vitest';
import { GOOGLE_SCOPES, MICROSOFT_SCOPES, MICROSOFT_SHARED_SCOPES, missingScopes, requestedScopes, unrequestedSharedScopes } from './scope-policy.js';

describe('scope policy', () => {
  it('asks Google for identity, read and send only — never the full-access or modify scopes', () => {
    expect(requestedScopes('google')).toEqual(['openid', 'email', 'https://www.googleapis.com/auth/gmail.readonly', 'https://www.googleapis.com/auth/gmail.send']);
    expect(requestedScopes('google').some((s) => s.includes('mail.google.com') || s.includes('modify'))).toBe(false);
    expect(requestedScopes('microsoft').some((s) => /ReadWrite/i.test(s))).toBe(false);
  });

  it('explains every scope in one plain line', () => {
    for (const s of [...GOOGLE_SCOPES, ...MICROSOFT_SCOPES, ...MICROSOFT_SHARED_SCOPES]) {
      expect(s.why.length).toBeGreaterThan(20);
      expect(s.why).not.toContain('\n');
    }
  });

  it('says on the consent screen that User.Read also reads the mailbox’s aliases for sends from one of them (graph-send-as.ts)', () => {
    const userRead = MICROSOFT_SCOPES.find((s) => s.scope.endsWith('/User.Read'));
    expect(userRead?.why).toMatch(/address of the mailbox/);
    expect(userRead?.why).toMatch(/email aliases when an agent sends from one of them/);
  });

  it('reports exactly the unticked Google scopes; the userinfo alias counts as email', () => {
    const granted = ['openid', 'https://www.googleapis.com/auth/userinfo.email', 'https://www.googleapis.com/auth/gmail.readonly'];
    expect(missingScopes('google', granted).map((s) => s.scope)).toEqual(['https://www.googleapis.com/auth/gmail.send']);
    expect(missingScopes('google', [...granted, 'https://www.googleapis.com/auth/gmail.send'])).toEqual([]);
  });

  it('compares Graph scopes with or without the resource prefix, case-insensitively', () => {
    expect(missingScopes('microsoft', ['Mail.Read', 'mail.send', 'https://graph.microsoft.com/User.Read', 'offline_access'])).toEqual([]);
    expect(missingScopes('microsoft', ['Mail.Read', 'Mail.Send', 'User.Read']).map((s) => s.scope)).toEqual(['offline_access']);
  });

  it('asks for Mail.Read.Shared and Mail.Send.Shared only when a shared mailbox is named, and then requires them', () => {
    const shared = ['https://graph.microsoft.com/Mail.Read.Shared', 'https://graph.microsoft.com/Mail.Send.Shared'];
    expect(requestedScopes('microsoft').filter((s) => s.endsWith('.Shared'))).toEqual([]);
    expect(requestedScopes('microsoft', { sharedMailbox: true })).toEqual([...requestedScopes('microsoft'), ...shared]);
    expect(requestedScopes('google', { sharedMailbox: true })).toEqual(requestedScopes('google'));
    const own = ['Mail.Read', 'Mail.Send', 'User.Read', 'offline_access'];
    expect(missingScopes('microsoft', own, { sharedMailbox: true }).map((s) => s.scope)).toEqual(shared);
    expect(missingScopes('microsoft', [...own, 'mail.read.shared', 'Mail.Send.Shared'], { sharedMailbox: true })).toEqual([]);
  });

  it('flags .Shared scopes granted to a connection that named no shared mailbox', () => {
    const granted = ['Mail.Read', 'Mail.Send', 'User.Read', 'offline_access', 'https://graph.microsoft.com/Mail.Read.Shared'];
    expect(unrequestedSharedScopes('microsoft', granted)).toEqual(['https://graph.microsoft.com/Mail.Read.Shared']);
    expect(unrequestedSharedScopes('microsoft', granted, { sharedMailbox: true })).toEqual([]);
    expect(unrequestedSharedScopes('microsoft', ['Mail.Read', 'Mail.Send'])).toEqual([]);
  });
});
