// Real errors from the provider client libraries (gaxios through @googleapis/gmail and
// google-auth-library, MSAL, the Graph client) carry the request they failed on: headers with the
// bearer token, form bodies with refresh tokens and client secrets, raw mail. None of that may reach
// a log line, while the fields an operator needs (code, status, provider reason) must.
import { Writable } from 'node:stream';
import { createServer } from 'node:net';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { gmail } from '@googleapis/gmail';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import { createGraphClient } from '../../src/providers/microsoft/graph-client.factory.js';
import { sandboxMicrosoftEndpoints } from '../../src/providers/microsoft/microsoft-endpoints.js';
import { buildMsalConfiguration } from '../../src/providers/microsoft/msal-config.js';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { startMicrosoftSandbox, type MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';

const SUBJECT = 'Payroll adjustments for Zelda Quimby';
const BODY_PHRASE = 'your new salary is 987654 per year';
const RECIPIENT = 'zelda.quimby@customer.example';
const RAW = Buffer.from(`From: agent@acme.test\r\nTo: ${RECIPIENT}\r\nSubject: ${SUBJECT}\r\n\r\n${BODY_PHRASE}\r\n`).toString('base64url');
const GOOGLE_SECRET = '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3456789';
const MS_SECRET = 'ms~log-safety-client-secret-0123456789abcdef';
const BOGUS_ACCESS = 'ya29.a0AfB_bogusAccessTokenForLogSafety0123456789';
const BOGUS_REFRESH = '1//0gBogusRefreshTokenForLogSafety0123456789abcdef';

let google: GoogleSandbox;
let ms: MicrosoftSandbox;
const lines: string[] = [];
let logger: Logger;

function capture(): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return createLogger({ level: 'debug', destination: sink });
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

/** True when `needle` is somewhere in the object graph (Headers instances included). */
function carries(value: unknown, needle: string, seen = new Set<unknown>()): boolean {
  if (typeof value === 'string') return value.includes(needle);
  if (value === null || typeof value !== 'object' || seen.has(value)) return false;
  seen.add(value);
  if (value instanceof Headers) return [...value.values()].some((v) => v.includes(needle));
  return Object.values(value).some((v) => carries(v, needle, seen));
}

function lastLine(): Record<string, unknown> {
  return JSON.parse(lines.at(-1)!) as Record<string, unknown>;
}

beforeAll(async () => {
  logger = capture();
  google = await startGoogleSandbox({ clients: [{ clientId: 'log-safety.apps.googleusercontent.com', clientSecret: GOOGLE_SECRET, redirectUris: ['http://127.0.0.1:9/cb'] }] });
  ms = await startMicrosoftSandbox({ clients: [{ clientId: 'app-log', clientSecret: MS_SECRET, redirectUris: ['http://127.0.0.1:9/cb'] }] });
});
afterAll(async () => {
  await google?.close();
  await ms?.close();
});

describe('error logging keeps credentials and mail content out, codes and statuses in', () => {
  it('a Gmail send rejected with 401 (gaxios error carrying the Authorization header and the raw message)', async () => {
    google.createUser('agent@acme.test');
    // As GmailAdapter does it: the bearer token in the per-call headers. gaxios 7 masks the
    // Authorization header in errors by default; with its redactor off (older gaxios copies, or
    // anyone's config) the header is in clear, and the raw message body always is.
    const api = gmail({ version: 'v1', rootUrl: google.endpoints.gmailRootUrl, retry: false });
    const options = { headers: { Authorization: `Bearer ${BOGUS_ACCESS}` }, errorRedactor: false as const };
    const err = await rejection(api.users.messages.send({ userId: 'me', requestBody: { raw: RAW } }, options));
    // The object really carries what must not be logged.
    expect(carries(err, BOGUS_ACCESS)).toBe(true);
    expect(carries(err, RAW)).toBe(true);
    logger.error({ err, mailboxId: 'mbx_1' }, 'gmail send failed');
    const line = lastLine();
    expect((line.err as { status: number }).status).toBe(401);
    expect((line.err as { type: string }).type).toMatch(/GaxiosError/);
  });

  it('a refresh with a revoked refresh token (google-auth-library: invalid_grant, form body with secret)', async () => {
    const client = new OAuth2Client({ clientId: 'log-safety.apps.googleusercontent.com', clientSecret: GOOGLE_SECRET, endpoints: google.endpoints });
    client.setCredentials({ refresh_token: BOGUS_REFRESH });
    const err = await rejection(client.getAccessToken());
    logger.warn({ err }, 'token refresh failed');
    const e = lastLine().err as { status: number; reason: string };
    expect(e.status).toBe(400);
    expect(e.reason).toBe('invalid_grant');
  });

  it('a network failure keeps its code (ECONNREFUSED)', async () => {
    const api = gmail({ version: 'v1', rootUrl: `http://127.0.0.1:${await closedPort()}/`, retry: false });
    const err = await rejection(api.users.messages.send({ userId: 'me', requestBody: { raw: RAW } }, { headers: { Authorization: `Bearer ${BOGUS_ACCESS}` } }));
    logger.error(err as Error);
    const text = JSON.stringify(lastLine());
    expect(text).toContain('ECONNREFUSED');
  });

  it('MSAL: a refresh-token redemption rejected by the token endpoint', async () => {
    const cca = new ConfidentialClientApplication(buildMsalConfiguration({ clientId: 'app-log', clientSecret: MS_SECRET, endpoints: sandboxMicrosoftEndpoints(ms) }));
    const err = await rejection(cca.acquireTokenByRefreshToken({ refreshToken: BOGUS_REFRESH, scopes: ['https://graph.microsoft.com/Mail.Read'] }));
    logger.error({ err }, 'msal refresh failed');
    const e = lastLine().err as { code: string };
    expect(e.code).toBe('invalid_grant');
  });

  it('Graph client: sendMail with a rejected token (GraphError with the response body)', async () => {
    ms.createUser('agent@contoso.test');
    const client = createGraphClient(sandboxMicrosoftEndpoints(ms), async () => BOGUS_ACCESS);
    const err = await rejection(
      client.api('/me/sendMail').post({ message: { subject: SUBJECT, body: { contentType: 'Text', content: BODY_PHRASE }, toRecipients: [{ emailAddress: { address: RECIPIENT } }] } }),
    );
    logger.error({ err }, 'graph send failed');
    const e = lastLine().err as { status: number; code: string };
    expect(e.status).toBe(401);
    expect(typeof e.code).toBe('string');
  });

  it('a raw Authorization header and content fields logged by mistake, in any case and depth', () => {
    logger.info({ headers: { Authorization: `Bearer ${BOGUS_ACCESS}` }, request: { config: { headers: { authorization: `Bearer ${BOGUS_ACCESS}` } } } }, 'careless headers');
    logger.info({ job: { payload: { message: { Subject: SUBJECT, Body: BODY_PHRASE, To: [RECIPIENT] } } } }, 'careless content');
    logger.info({ err: { message: `failed for ${RECIPIENT} with Bearer ${BOGUS_ACCESS}`, code: 'EPROTO', config: { data: RAW } } }, 'plain object as err');
    expect(lines.at(-1)).toContain('"code":"EPROTO"');
  });

  it('none of the secrets or mail content appears in any line written above', () => {
    expect(lines.length).toBeGreaterThanOrEqual(8);
    const all = lines.join('\n');
    for (const secret of [BOGUS_ACCESS, BOGUS_REFRESH, GOOGLE_SECRET, MS_SECRET, SUBJECT, BODY_PHRASE, RECIPIENT, RAW.slice(0, 40), 'zelda']) {
      expect(all.toLowerCase()).not.toContain(secret.toLowerCase());
    }
    // Every line is still valid JSON with its message.
    for (const l of lines) expect(typeof (JSON.parse(l) as { msg: unknown }).msg).toBe('string');
  });
});
