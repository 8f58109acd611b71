// The connector's Entra app authenticates with a certificate (MICROSOFT_CLIENT_CERTIFICATE_PATH)
// instead of a secret: the Microsoft stand-in (SANDBOX=1) registers that certificate on the app and
// its token endpoint verifies MSAL's client assertion (x5t#S256 header naming a registered
// certificate, signature with its key, iss/sub, aud, exp, jti). The whole organization install
// runs on it; once the app's registered certificate is another one, the assertion is refused
// (AADSTS700027) and a new install cannot become active.
import { generateKeyPairSync, X509Certificate, createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveMicrosoftAdminConsent, approveMicrosoftConsent } from '../../src/sandbox/microsoft/approve-microsoft-consent.js';
import type { MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { SANDBOX_DIRECTORY_ROLES } from '../../src/sandbox/microsoft/sandbox-identity.handler.js';
import { selfSignedCertificate } from '../../src/sandbox/self-signed-certificate.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { connectMailbox } from './connect-helpers.js';

const ADMIN = 'admin@contoso.test';
let svc: TestService;
let ms: MicrosoftSandbox;
let tenant: { tenantId: string; apiKey: string };
let dir: string;
let certPem: string;

async function rsaCertificate(commonName: string) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  return selfSignedCertificate({ commonName, keyPair: { privateKeyPem: privateKey, publicKeyPem: publicKey }, notAfter: new Date(Date.now() + 90 * 86_400_000) });
}

function decode(s: string): string {
  return s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

/** Hosted page → administrator sign-in → (on success) admin consent → the connector's final answer. */
async function install(): Promise<{ installId: string; finalStatus: number }> {
  const created = await svc.api(tenant.apiKey, 'POST', '/v1/organization-installs', { provider: 'microsoft' });
  expect(created.status).toBe(201);
  const html = await (await fetch(created.body.consentUrl)).text();
  const signIn = decode(/id="continue" href="([^"]+)"/.exec(html)?.[1] ?? '');
  const signedIn = await fetch(await approveMicrosoftConsent(signIn, { email: ADMIN }), { redirect: 'manual' });
  if (signedIn.status !== 302) return { installId: created.body.install.id, finalStatus: signedIn.status };
  const back = await approveMicrosoftAdminConsent(signedIn.headers.get('location')!, { email: ADMIN });
  return { installId: created.body.install.id, finalStatus: (await fetch(back, { redirect: 'manual' })).status };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mbc-org-cert-'));
  const cert = await rsaCertificate('connector-app');
  certPem = cert.certPem;
  const file = path.join(dir, 'microsoft-app.pem');
  await writeFile(file, `${cert.keyPem}${cert.certPem}`, { mode: 0o600 });
  svc = await startTestService({ env: { SANDBOX: '1', MICROSOFT_CLIENT_CERTIFICATE_PATH: file }, workers: false });
  ms = svc.services.access.settings.sandbox.microsoft!;
  ms.createUser(ADMIN);
  ms.setDirectoryRoles(ADMIN, [SANDBOX_DIRECTORY_ROLES.globalAdministrator]);
  tenant = await svc.createTenant();
}, 120_000);
afterAll(async () => {
  await svc?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('organization install with the app certificate (MICROSOFT_CLIENT_CERTIFICATE_PATH)', () => {
  it('the app authenticates with the certificate: sign-in code redemption and client-credential tokens pass the stand-in’s assertion checks; the install becomes active', async () => {
    const settings = svc.services.access.settings.microsoft!;
    const thumbprint = createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
    expect(settings.credential).toMatchObject({ kind: 'certificate', thumbprintSha256: thumbprint });
    // The stand-in's app has exactly this certificate registered (it refuses any other).
    expect(ms.clients[0]!.certificatePem).toBe(new X509Certificate(certPem).toString());
    const r = await install();
    expect(r.finalStatus).toBe(200);
    expect((await svc.api(tenant.apiKey, 'GET', `/v1/organization-installs/${r.installId}`)).body).toMatchObject({ status: 'active', directoryId: ms.tenantId });
    // The certificate's key never reaches a log line.
    expect(svc.logs.join('\n')).not.toContain('PRIVATE KEY');
    expect(svc.logs.join('\n')).toContain(thumbprint);
  });

  it('the delegated connect (a person connects their own mailbox) authenticates the app with the same certificate', async () => {
    const { result } = await connectMailbox(svc, tenant.apiKey, 'microsoft', 'agent@contoso.test');
    expect(result.status, result.html).toBe(200);
    expect(result.html).toContain('Mailbox connected');
  });

  it('once the app’s registered certificate is another one (AADSTS700027 for the connector’s assertion), an install cannot become active', async () => {
    const rotated = await rsaCertificate('rotated-elsewhere');
    ms.registerClient({ ...ms.clients[0]!, certificatePem: rotated.certPem });
    const r = await install();
    expect(r.finalStatus).toBe(400);
    const view = (await svc.api(tenant.apiKey, 'GET', `/v1/organization-installs/${r.installId}`)).body;
    expect(view).toMatchObject({ status: 'failed', statusReason: 'signin_not_verified', directoryId: null });
  });
});
