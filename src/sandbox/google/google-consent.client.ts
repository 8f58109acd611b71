/**
 * Drives the Google stand-in's consent page over plain HTTP, as a browser would: load the
 * authorize URL, fill `#email`, untick the requested scopes, press `#approve` or `#deny`, and
 * return the URL the browser would be redirected to (carrying `code` + `state`, or `error`).
 * For tests and the demo; it only understands the stand-in's own page.
 */
export interface ConsentOptions {
  email: string;
  /** Scopes to untick (granular consent). */
  uncheck?: string[];
  deny?: boolean;
}

const decodeEntities = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return m ? decodeEntities(m[1]!) : undefined;
}

export async function approveGoogleConsent(authorizeUrl: string, opts: ConsentOptions): Promise<URL> {
  const page = await fetch(authorizeUrl, { redirect: 'manual' });
  const location = page.headers.get('location');
  if (page.status >= 300 && page.status < 400 && location) {
    // The authorization server redirected straight back (e.g. unsupported_response_type).
    return new URL(location, authorizeUrl);
  }
  const html = await page.text();
  if (page.status !== 200) {
    const error = /id="error">([^<]*)</.exec(html)?.[1] ?? `HTTP ${page.status}`;
    throw new Error(`Google consent page refused the request: ${decodeEntities(error)}`);
  }
  const formTag = /<form[^>]*id="consent"[^>]*>/.exec(html)?.[0];
  const action = formTag ? attr(formTag, 'action') : undefined;
  if (!action) throw new Error('Google consent page has no consent form');
  const fields = new URLSearchParams();
  for (const tag of html.match(/<input[^>]*>/g) ?? []) {
    const type = attr(tag, 'type');
    const name = attr(tag, 'name');
    const value = attr(tag, 'value') ?? '';
    if (!name) continue;
    if (type === 'hidden') fields.append(name, value);
    if (type === 'checkbox' && name === 'scope' && !(opts.uncheck ?? []).includes(value)) fields.append(name, value);
  }
  fields.set('email', opts.email);
  fields.set('action', opts.deny ? 'deny' : 'approve');
  const res = await fetch(new URL(action, authorizeUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: fields.toString(),
    redirect: 'manual',
  });
  const next = res.headers.get('location');
  if (res.status < 300 || res.status >= 400 || !next) {
    throw new Error(`Google consent submission failed with HTTP ${res.status}`);
  }
  return new URL(next, authorizeUrl);
}
