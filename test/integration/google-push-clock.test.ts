// The Gmail push verifier checks a Pub/Sub OIDC token's exp and iat against the process clock
// (core.clock), not the machine's: a service whose clock is set to another instant accepts a
// token that is fresh at that instant and refuses one that is fresh by the wall clock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModules } from '../../src/bootstrap/modules.js';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { createSigningKey, signJwt, type SigningKey } from '../../src/sandbox/google/google-signing-key.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

/** The service's clock: three days behind the wall clock (beyond a token's hour and the one-day iat limit). */
const SHIFT_MS = -3 * 24 * 3600_000;
const serviceNow = () => new Date(Date.now() + SHIFT_MS);

let key: SigningKey;
let google: GoogleSandbox;
let svc: TestService;

beforeAll(async () => {
  key = await createSigningKey();
  google = await startGoogleSandbox({ port: 0, signingKey: key });
  svc = await startTestService({
    env: { SANDBOX: '1', SANDBOX_GOOGLE_URL: google.url },
    workers: false,
    modules: async (core, services) => {
      core.clock = serviceNow;
      return createModules(core, services);
    },
  });
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await google?.close();
});

async function push(issuedAtMs: number): Promise<number> {
  const pubsub = svc.services.access.settings.google!.pubsub;
  const iat = Math.floor(issuedAtMs / 1000);
  const sub = '100000000000000000001';
  const token = signJwt(key, { aud: pubsub.audience, azp: sub, email: pubsub.serviceAccount, email_verified: true, exp: iat + 3600, iat, iss: 'https://accounts.google.com', sub });
  const body = JSON.stringify({ message: { data: Buffer.from(JSON.stringify({ emailAddress: 'nobody@acme.test', historyId: '1' })).toString('base64url'), messageId: '1' }, subscription: 'projects/p/subscriptions/s' });
  const res = await fetch(`${svc.url}/push/google`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body });
  await res.arrayBuffer();
  return res.status;
}

describe('Gmail push token time checks follow the process clock', () => {
  it('accepts a token issued at the service clock’s now, though it expired days ago by the wall clock', async () => {
    expect(await push(serviceNow().getTime())).toBe(204);
  });

  it('refuses a token issued at the wall clock’s now: its iat is days in the service clock’s future', async () => {
    expect(await push(Date.now())).toBe(401);
  });

  it('refuses a token whose hour expired by the service clock', async () => {
    expect(await push(serviceNow().getTime() - 2 * 3600_000)).toBe(401);
  });
});
