// SANDBOX=1 with stand-ins in another place (what `mailbox-connector sandbox` prints): the
// connector reads the Microsoft stand-in's certificate from its loopback TLS handshake and
// registers its Pub/Sub push endpoint with the Google stand-in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { startMicrosoftSandbox, type MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { access, connectMailbox } from './connect-helpers.js';

let google: GoogleSandbox;
let microsoft: MicrosoftSandbox;
let svc: TestService;

beforeAll(async () => {
  google = await startGoogleSandbox({ port: 0 });
  microsoft = await startMicrosoftSandbox();
  svc = await startTestService({
    env: { SANDBOX: '1', SANDBOX_GOOGLE_URL: google.url, SANDBOX_MICROSOFT_URL: microsoft.graphBaseUrl, SANDBOX_MICROSOFT_AUTHORITY: microsoft.authority },
    workers: false,
  });
});
afterAll(async () => {
  await svc?.close();
  await microsoft?.close();
  await google?.close();
});

describe('external stand-ins', () => {
  it('uses the given stand-ins and starts none of its own', async () => {
    const a = await access(svc);
    expect(a.settings.mode).toBe('sandbox-external');
    expect(a.settings.sandbox).toEqual({ google: undefined, microsoft: undefined });
    expect(a.settings.microsoft?.endpoints.authority).toBe(microsoft.authority);
    expect(a.settings.microsoft?.endpoints.extraCaPem?.replace(/\s+/g, '')).toBe(microsoft.caCertPem.replace(/\s+/g, ''));
    expect(a.settings.google?.pubsub.pushEndpoint).toBe(`${svc.url}/push/google`);
    const state = (await (await fetch(`${google.url}/_sandbox/state`)).json()) as { pushes: unknown[] };
    expect(state).toBeDefined();
  });

  it('connects a Microsoft and a Google mailbox through them', async () => {
    const { apiKey } = await svc.createTenant({ name: 'external', allowedReturnOrigins: ['https://helpdesk.example.com'] });
    for (const [provider, email] of [['microsoft', 'ext@contoso.test'], ['google', 'ext@acme.test']] as const) {
      const { result } = await connectMailbox(svc, apiKey, provider, email, { returnUrl: 'https://helpdesk.example.com/done' });
      const back = new URL(result.location!);
      expect(back.searchParams.get('status')).toBe('connected');
      const a = await access(svc);
      expect(await a.providers.forMailbox({ id: back.searchParams.get('mailbox_id')!, provider }).getAddress()).toBe(email);
    }
  });
});
