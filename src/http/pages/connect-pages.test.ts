import { describe, expect, it } from 'vitest';
import { choosePage, closedPage, cspWithImageOrigin, escapeHtml, resultPage } from './connect-pages.js';

describe('connect pages', () => {
  it('escapes everything interpolated', () => {
    expect(escapeHtml(`<img src=x onerror="a('b')">&\``)).toBe('&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;&#96;');
    const html = resultPage({ kind: 'finished', sessionId: 'cs_1', tenantId: 'ten_1', result: 'error', mailboxId: null, missing: [], returnUrl: null, provider: 'google', detail: '<script>x</script>' }, undefined);
    expect(html).not.toContain('<script>x');
    expect(html).toContain('&lt;script&gt;x');
  });

  it('lists each scope of each offered provider with its start link', () => {
    const html = choosePage({
      kind: 'choose',
      sessionId: 'cs_ABC',
      tenantId: 'ten_1',
      reconnect: false,
      providers: [{ provider: 'google', scopes: [{ scope: 's1', label: 'Read', why: 'Because reading is needed here.', required: true }] }],
    });
    expect(html).toContain('href="/connect/cs_ABC/start?provider=google"');
    expect(html).toContain('<strong>Read</strong> — Because reading is needed here.');
    expect(html).not.toContain('<script');
  });

  it('names the connected address, escaped, and loads the address-bar cleaner from a file', () => {
    const html = resultPage({ kind: 'finished', sessionId: 'cs_1', tenantId: 'ten_1', result: 'connected', mailboxId: 'mbx_1', missing: [], returnUrl: null, provider: 'google', detail: undefined, address: '"<b>"@acme.test' }, undefined);
    expect(html).toContain('<strong id="address">&quot;&lt;b&gt;&quot;@acme.test</strong>');
    expect(html).toContain('<script src="/connect/assets/clean-url.js" defer></script>');
    expect(html.match(/<script/g)).toHaveLength(1);
  });

  it('a shared-mailbox session names exactly that mailbox, escaped, and says the member’s own is not read', () => {
    const html = choosePage({
      kind: 'choose',
      sessionId: 'cs_S',
      tenantId: 'ten_1',
      reconnect: false,
      sharedMailbox: '"<b>"@contoso.test',
      providers: [{ provider: 'microsoft', scopes: [{ scope: 'Mail.Read.Shared', label: 'Read the shared mailbox', why: 'Why.', required: true }] }],
    });
    expect(html).toContain('<strong id="shared-mailbox">&quot;&lt;b&gt;&quot;@contoso.test</strong>');
    expect(html).not.toContain('<b>');
    expect(html).toContain('only the Inbox of');
    expect(html).toContain('Your own mailbox is not read');
    expect(html).toContain('href="/connect/cs_S/start?provider=microsoft"');
    // An ordinary session says nothing about shared mailboxes.
    const own = choosePage({ kind: 'choose', sessionId: 'cs_O', tenantId: 'ten_1', reconnect: false, providers: [{ provider: 'microsoft', scopes: [] }] });
    expect(own).not.toContain('shared-mailbox');
  });

  it('the no-access page for a shared mailbox offers Try again', () => {
    const html = resultPage({ kind: 'finished', sessionId: 'cs_1', tenantId: 'ten_1', result: 'mailbox_access_denied', mailboxId: null, missing: [], returnUrl: null, provider: 'microsoft', detail: 'not a member of <x>' }, '/connect/cs_1');
    expect(html).toContain('data-status="mailbox_access_denied"');
    expect(html).toContain('not a member of &lt;x&gt;');
    expect(html).toContain('id="try-again"');
  });

  it('names each missing permission on the missing-scopes page', () => {
    const html = resultPage(
      { kind: 'finished', sessionId: 'cs_1', tenantId: 'ten_1', result: 'missing_scopes', mailboxId: null, returnUrl: null, provider: 'microsoft', detail: undefined, missing: [{ scope: 'offline_access', label: 'Stay connected', why: 'Keeps it connected.', required: true }] },
      undefined,
    );
    expect(html).toContain('data-scope="offline_access"');
    expect(html).toContain('Stay connected');
  });

  describe('tenant branding', () => {
    const hostile = {
      displayName: `Acme "Support" <script>alert('x')</script> & Co`,
      logo: { url: 'https://cdn.acme.example/logo.png?a=1&b="2"', origin: 'https://cdn.acme.example' },
      supportUrl: 'mailto:help@acme.example?subject=Hi&x="y"',
    };
    const choose = { kind: 'choose' as const, sessionId: 'cs_1', tenantId: 'ten_1', reconnect: false, providers: [] };
    const finished = { kind: 'finished' as const, sessionId: 'cs_1', tenantId: 'ten_1', mailboxId: null, missing: [], returnUrl: null, provider: 'google' as const, detail: undefined };

    it('names the tenant, shows its logo and support link, every value escaped', () => {
      const pages = [choosePage(choose, hostile), resultPage({ ...finished, result: 'connected', mailboxId: 'mbx_1' }, undefined, hostile), resultPage({ ...finished, result: 'denied' }, '/connect/cs_1', hostile), resultPage({ ...finished, result: 'expired' }, undefined, hostile), closedPage('expired', hostile)];
      for (const html of pages) {
        expect(html).not.toContain('<script>alert');
        expect(html).not.toContain(`"Support"`);
        expect(html).toContain('Acme &quot;Support&quot; &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co');
        expect(html).toContain('<img class="brand-logo" id="brand-logo" src="https://cdn.acme.example/logo.png?a=1&amp;b=&quot;2&quot;" alt="Acme &quot;Support&quot; &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co logo" referrerpolicy="no-referrer"');
        expect(html).toContain('<a id="support-link" href="mailto:help@acme.example?subject=Hi&amp;x=&quot;y&quot;">Contact support</a>');
        expect(html).not.toMatch(/your helpdesk/i);
      }
      expect(pages[0]).toContain('<h1 id="connect-heading">Connect your mailbox to Acme &quot;Support&quot;');
      expect(pages[0]).toContain('<title>Connect your mailbox to Acme &quot;Support&quot; &lt;script&gt;');
    });

    it('without branding: "your helpdesk", no logo, no support link', () => {
      const html = choosePage(choose);
      expect(html).toContain('<h1 id="connect-heading">Connect your mailbox</h1><p>Your helpdesk asks');
      expect(html).not.toContain('<img class="brand-logo"');
      expect(html).not.toContain('id="support-link"');
      expect(resultPage({ ...finished, result: 'denied' }, undefined)).toContain('Go back to your helpdesk to start again.');
    });

    it('an https support link opens apart from the flow, without a referrer', () => {
      expect(choosePage(choose, { displayName: null, logo: null, supportUrl: 'https://help.acme.example/x' })).toContain('<a id="support-link" href="https://help.acme.example/x" target="_blank" rel="noopener noreferrer">Contact support</a>');
    });

    it('widens only img-src, by exactly the logo origin', () => {
      const helmet = "default-src 'self';base-uri 'self';img-src 'self' data:;object-src 'none';script-src 'self'";
      expect(cspWithImageOrigin(helmet, 'https://cdn.acme.example')).toBe("default-src 'self';base-uri 'self';img-src 'self' data: https://cdn.acme.example;object-src 'none';script-src 'self'");
      expect(cspWithImageOrigin("default-src 'none'", 'https://cdn.acme.example:8443')).toBe("default-src 'none';img-src 'self' data: https://cdn.acme.example:8443");
    });
  });
});
