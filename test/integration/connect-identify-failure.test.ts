// When the account cannot be identified after the code exchange (here: Google's ID token fails
// verification because the stand-in's clock is two hours behind, so the token is already expired),
// the grant Google just issued is revoked — otherwise each retry leaves another live refresh token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { connectMailbox, mailboxRows } from './connect-helpers.js';

let google: GoogleSandbox;
let svc: TestService;
let skewMs = 0;

beforeAll(async () => {
  google = await startGoogleSandbox({ now: () => Date.now() + skewMs });
  svc = await startTestService({ env: { SANDBOX: '1', SANDBOX_GOOGLE_URL: google.url }, workers: false });
});
afterAll(async () => {
  await svc?.close();
  await google?.close();
});

describe('Google identification fails after the code exchange', () => {
  it('revokes the fresh grant on every failed attempt, stores nothing, and a later attempt connects', async () => {
    const { apiKey } = await svc.createTenant({ name: 'identify', allowedReturnOrigins: ['https://helpdesk.example.com'] });
    const email = 'retry@acme.test';
    skewMs = -2 * 3600_000;
    for (let attempt = 1; attempt <= 2; attempt++) {
      const { result } = await connectMailbox(svc, apiKey, 'google', email, { returnUrl: 'https://helpdesk.example.com/done' });
      expect(new URL(result.location!).searchParams.get('status')).toBe('error');
      const refreshRevocations = google.revokedTokens().filter((r) => r.kind === 'refresh' && r.email === email);
      expect(refreshRevocations, `attempt ${attempt}`).toHaveLength(attempt);
    }
    expect(await mailboxRows(svc)).toHaveLength(0);

    skewMs = 0;
    const { result } = await connectMailbox(svc, apiKey, 'google', email, { returnUrl: 'https://helpdesk.example.com/done' });
    expect(new URL(result.location!).searchParams.get('status')).toBe('connected');
    // The stored grant is the one left alive: no further revocation.
    expect(google.revokedTokens().filter((r) => r.email === email && r.kind === 'refresh')).toHaveLength(2);
    expect(await mailboxRows(svc)).toHaveLength(1);
  });
});
