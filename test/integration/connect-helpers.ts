// Shared steps of the connect tests: create a session over the API, follow the hosted page's
// start link like a browser (keeping its cookie), approve consent on the stand-in, and deliver
// the provider's redirect to the callback with the same cookie.
import { expect } from 'vitest';
import type { MailAccess } from '../../src/bootstrap/connect.module.js';
import { approveGoogleConsent } from '../../src/sandbox/google/google-consent.client.js';
import { approveMicrosoftConsent } from '../../src/sandbox/microsoft/approve-microsoft-consent.js';
import type { TestService } from '../helpers/test-service.js';

export type Provider = 'google' | 'microsoft';

export interface StartedConsent {
  sessionId: string;
  authorizeUrl: string;
  /** `name=value` of the browser-binding cookie set by /start. */
  cookie: string;
}

export async function access(svc: TestService): Promise<MailAccess> {
  return svc.services.access;
}

export async function createSession(svc: TestService, apiKey: string, body: Record<string, unknown>): Promise<{ id: string; url: string; expiresAt: string; provider: Provider | null; mailboxId: string | null }> {
  const res = await svc.api(apiKey, 'POST', '/v1/connect-sessions', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; url: string; expiresAt: string; provider: Provider | null; mailboxId: string | null };
}

export async function startConsent(url: string, provider: Provider): Promise<StartedConsent> {
  const res = await fetch(`${url}/start?provider=${provider}`, { redirect: 'manual' });
  expect(res.status).toBe(302);
  const setCookie = res.headers.get('set-cookie') ?? '';
  const cookie = setCookie.split(';')[0] ?? '';
  expect(cookie).toMatch(/^mbc_connect_cs_/);
  return { sessionId: url.split('/').pop()!, authorizeUrl: res.headers.get('location')!, cookie };
}

export async function consent(provider: Provider, authorizeUrl: string, opts: { email: string; uncheck?: string[]; deny?: boolean }): Promise<URL> {
  return provider === 'google' ? approveGoogleConsent(authorizeUrl, opts) : approveMicrosoftConsent(authorizeUrl, opts);
}

export async function deliverCallback(callback: URL | string, cookie: string | undefined): Promise<{ status: number; location: string | null; html: string }> {
  const res = await fetch(callback, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  return { status: res.status, location: res.headers.get('location'), html: await res.text() };
}

/** The whole flow for one address; returns where the customer ended up. */
export async function connectMailbox(svc: TestService, apiKey: string, provider: Provider, email: string, body: Record<string, unknown> = {}, opts: { uncheck?: string[]; deny?: boolean } = {}) {
  const session = await createSession(svc, apiKey, { provider, ...body });
  const started = await startConsent(session.url, provider);
  const back = await consent(provider, started.authorizeUrl, { email, ...opts });
  const result = await deliverCallback(back, started.cookie);
  return { session, started, back, result };
}

export async function mailboxRows(svc: TestService, where: Record<string, unknown> = {}) {
  return svc.core.prisma.mailbox.findMany({ where, orderBy: { id: 'asc' } });
}

export async function eventsOf(svc: TestService, mailboxId: string, type?: string) {
  return svc.core.prisma.outboxEvent.findMany({ where: { mailboxId, ...(type ? { type } : {}) }, orderBy: { seq: 'asc' } });
}
