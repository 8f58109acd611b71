import { request } from 'node:https';
import { sandboxCaFor } from './sandbox-ca.registry.js';

export interface ApproveConsentOptions {
  email: string;
  /** Scopes to untick on the consent page (e.g. 'offline_access' or 'https://graph.microsoft.com/Mail.Send'). */
  uncheck?: string[];
  deny?: boolean;
  /** PEM of the sandbox certificate; defaults to the one of the sandbox started in this process. */
  caCertPem?: string;
}

interface SimpleResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(url: URL, method: 'GET' | 'POST', ca: string, body?: string): Promise<SimpleResponse> {
  if (url.protocol !== 'https:' || !['127.0.0.1', 'localhost'].includes(url.hostname)) {
    return Promise.reject(new Error('approveMicrosoftConsent only talks to the local sandbox over https'));
  }
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        // Trust exactly the sandbox certificate (verification stays on).
        ca,
        headers: body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body).toString() } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function decodeEntities(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/**
 * Fills in the Microsoft stand-in's consent page the way a person would (no browser needed):
 * loads the authorize URL, sets the email, unticks `uncheck` scopes, presses Accept or Cancel,
 * and returns the URL the sandbox redirected to (with code+state, or error=access_denied).
 */
export async function approveMicrosoftConsent(authorizeUrl: string, opts: ApproveConsentOptions): Promise<URL> {
  const url = new URL(authorizeUrl);
  const ca = opts.caCertPem ?? sandboxCaFor(url.origin);
  if (!ca) throw new Error(`no sandbox certificate known for ${url.origin}; pass caCertPem`);
  const page = await send(url, 'GET', ca);
  if (page.status !== 200) {
    const err = /<p id="error">([^<]*)<\/p>/.exec(page.body)?.[1];
    throw new Error(`consent page failed with HTTP ${page.status}${err ? `: ${decodeEntities(err)}` : ''}`);
  }
  const txn = /name="txn" value="([^"]+)"/.exec(page.body)?.[1];
  if (!txn) throw new Error('consent page has no transaction field');
  const scopes = [...page.body.matchAll(/<input type="checkbox" name="scope" id="[^"]+" value="([^"]*)"/g)].map((m) => decodeEntities(m[1] ?? ''));
  const form = new URLSearchParams();
  form.set('txn', txn);
  form.set('email', opts.email);
  for (const s of scopes) if (!(opts.uncheck ?? []).includes(s)) form.append('scope', s);
  form.set('action', opts.deny ? 'deny' : 'approve');
  const res = await send(url, 'POST', ca, form.toString());
  const location = res.headers.location;
  if (res.status !== 302 || typeof location !== 'string') {
    const err = /<p id="error">([^<]*)<\/p>/.exec(res.body)?.[1];
    throw new Error(`consent submit failed with HTTP ${res.status}${err ? `: ${decodeEntities(err)}` : ''}`);
  }
  return new URL(location);
}

/**
 * Fills in the stand-in's admin consent page (`/{tenant}/v2.0/adminconsent`) as an administrator:
 * sets the address, presses Accept (or Cancel with `deny`) and returns the redirect
 * (`admin_consent=True&tenant=…&state=…`, or `error=access_denied`).
 */
export async function approveMicrosoftAdminConsent(adminConsentUrl: string, opts: Omit<ApproveConsentOptions, 'uncheck'>): Promise<URL> {
  const url = new URL(adminConsentUrl);
  const ca = opts.caCertPem ?? sandboxCaFor(url.origin);
  if (!ca) throw new Error(`no sandbox certificate known for ${url.origin}; pass caCertPem`);
  const page = await send(url, 'GET', ca);
  if (page.status !== 200) throw new Error(`admin consent page failed with HTTP ${page.status}`);
  const txn = /name="txn" value="([^"]+)"/.exec(page.body)?.[1];
  if (!txn) throw new Error('admin consent page has no transaction field');
  const form = new URLSearchParams({ txn, email: opts.email, action: opts.deny ? 'deny' : 'approve' });
  const res = await send(url, 'POST', ca, form.toString());
  const location = res.headers.location;
  if (res.status !== 302 || typeof location !== 'string') {
    const err = /<p id="error">([^<]*)<\/p>/.exec(res.body)?.[1];
    throw new Error(`admin consent failed with HTTP ${res.status}${err ? `: ${decodeEntities(err)}` : ''}`);
  }
  return new URL(location);
}
