import { describe, expect, it } from 'vitest';
import { choosePage, escapeHtml, resultPage } from './connect-pages.js';

describe('connect pages', () => {
  it('escapes everything interpolated', () => {
    expect(escapeHtml(`<img src=x onerror="a('b')">&\``)).toBe('&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;&#96;');
    const html = resultPage({ kind: 'finished', sessionId: 'cs_1', result: 'error', mailboxId: null, missing: [], returnUrl: null, provider: 'google', detail: '<script>x</script>' }, undefined);
    expect(html).not.toContain('<script>x');
    expect(html).toContain('&lt;script&gt;x');
  });

  it('lists each scope of each offered provider with its start link', () => {
    const html = choosePage({
      kind: 'choose',
      sessionId: 'cs_ABC',
      reconnect: false,
      providers: [{ provider: 'google', scopes: [{ scope: 's1', label: 'Read', why: 'Because reading is needed here.', required: true }] }],
    });
    expect(html).toContain('href="/connect/cs_ABC/start?provider=google"');
    expect(html).toContain('<strong>Read</strong> — Because reading is needed here.');
    expect(html).not.toContain('<script');
  });

  it('names the connected address, escaped, and loads the address-bar cleaner from a file', () => {
    const html = resultPage({ kind: 'finished', sessionId: 'cs_1', result: 'connected', mailboxId: 'mbx_1', missing: [], returnUrl: null, provider: 'google', detail: undefined, address: '"<b>"@acme.test' }, undefined);
    expect(html).toContain('<strong id="address">&quot;&lt;b&gt;&quot;@acme.test</strong>');
    expect(html).toContain('<script src="/connect/assets/clean-url.js" defer></script>');
    expect(html.match(/<script/g)).toHaveLength(1);
  });

  it('names each missing permission on the missing-scopes page', () => {
    const html = resultPage(
      { kind: 'finished', sessionId: 'cs_1', result: 'missing_scopes', mailboxId: null, returnUrl: null, provider: 'microsoft', detail: undefined, missing: [{ scope: 'offline_access', label: 'Stay connected', why: 'Keeps it connected.', required: true }] },
      undefined,
    );
    expect(html).toContain('data-scope="offline_access"');
    expect(html).toContain('Stay connected');
  });
});
