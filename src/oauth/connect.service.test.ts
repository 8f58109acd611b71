import { describe, expect, it } from 'vitest';
import { checkReturnUrl, ConnectRequestError, resultRedirect } from './connect.service.js';

const allowed = ['https://helpdesk.example.com', 'http://localhost:3000/'];

describe('checkReturnUrl', () => {
  it('accepts an exact origin match, keeping path and query', () => {
    expect(checkReturnUrl('https://helpdesk.example.com/settings?tab=mail', allowed)).toBe('https://helpdesk.example.com/settings?tab=mail');
    expect(checkReturnUrl('http://localhost:3000/x', allowed)).toBe('http://localhost:3000/x');
  });

  it.each([
    'https://helpdesk.example.com.evil.test/',
    'https://evil.test/?https://helpdesk.example.com',
    'http://helpdesk.example.com/',
    'https://helpdesk.example.com:444/',
    'https://user:pw@helpdesk.example.com/',
    'javascript:alert(1)',
    '//helpdesk.example.com/',
    'data:text/html,hi',
    '',
  ])('refuses %s', (url) => {
    const err = (() => {
      try {
        checkReturnUrl(url, allowed);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConnectRequestError);
    expect(err).toMatchObject({ code: 'return_url_not_allowed' });
  });

  it('refuses everything when the tenant allows no origin', () => {
    expect(() => checkReturnUrl('https://helpdesk.example.com/', [])).toThrow(ConnectRequestError);
  });
});

describe('resultRedirect', () => {
  it('adds status, mailbox_id and the session id and keeps existing parameters', () => {
    const u = new URL(resultRedirect('https://h.example/cb?x=1&status=spoofed', 'connected', 'mbx_1', 'cs_1'));
    expect(u.searchParams.get('x')).toBe('1');
    expect(u.searchParams.getAll('status')).toEqual(['connected']);
    expect(u.searchParams.get('mailbox_id')).toBe('mbx_1');
    expect(u.searchParams.get('connect_session_id')).toBe('cs_1');
  });

  it('omits mailbox_id when there is none', () => {
    expect(new URL(resultRedirect('https://h.example/cb', 'denied', null, 'cs_1')).searchParams.has('mailbox_id')).toBe(false);
  });
});
