import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OAuth2Client } from 'google-auth-library';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { connectGoogleSandboxUser } from '../../src/sandbox/google/google-sandbox-connect.client.js';
import { GmailWatchAdapter } from '../../src/providers/google/gmail-watch.adapter.js';
import { oauth2ClientEndpoints, sandboxGoogleEndpoints } from '../../src/providers/google/google-endpoints.js';

const AUDIENCE = 'https://connector.example/push/google';
const SERVICE_ACCOUNT = 'gmail-push@connector-project.iam.gserviceaccount.com';
const TOPIC = 'projects/connector-project/topics/gmail';

interface Received {
  at: number;
  authorization: string | undefined;
  body: { message: { data: string; messageId: string; publishTime: string }; subscription: string };
}

let sandbox: GoogleSandbox;
let receiver: Server;
let receiverUrl: string;
const received: Received[] = [];
/** Status codes to answer next (then 204). */
const answers: number[] = [];

function decode(r: Received): { emailAddress: string; historyId: string } {
  return JSON.parse(Buffer.from(r.body.message.data, 'base64').toString('utf8'));
}
const forUser = (email: string) => received.filter((r) => decode(r).emailAddress === email);
const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for push');
    await new Promise((r) => setTimeout(r, 20));
  }
};
const mime = (n: string) => Buffer.from(`From: a@example.org\r\nTo: b@acme.test\r\nSubject: ${n}\r\nMessage-ID: <${n}@example.org>\r\n\r\nbody\r\n`);

async function watchedUser(email: string): Promise<GmailWatchAdapter> {
  const u = await connectGoogleSandboxUser(sandbox.endpoints, { email, scopes: ['https://www.googleapis.com/auth/gmail.readonly'] });
  const watch = new GmailWatchAdapter({ endpoints: sandboxGoogleEndpoints(sandbox.url), accessToken: async () => u.accessToken });
  const info = await watch.watch(TOPIC);
  expect(info.historyId).toBe(sandbox.currentHistoryId(email));
  const days = (info.expiresAt.getTime() - Date.now()) / 86_400_000;
  expect(days).toBeGreaterThan(6.9);
  expect(days).toBeLessThanOrEqual(7);
  return watch;
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ at: Date.now(), authorization: req.headers.authorization, body: JSON.parse(body) });
      res.statusCode = answers.shift() ?? 204;
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/push/google`;
  sandbox = await startGoogleSandbox({
    push: { endpoint: receiverUrl, audience: AUDIENCE, serviceAccountEmail: SERVICE_ACCOUNT, retryBackoffMs: 30 },
  });
});
afterAll(async () => {
  await sandbox.close();
  await new Promise<void>((r) => receiver.close(() => r()));
});

describe('Pub/Sub push from the Google stand-in', () => {
  it('sends a signed push right after watch that google-auth-library verifies with the sandbox certs', async () => {
    await watchedUser('signed@acme.test');
    await until(() => forUser('signed@acme.test').length === 1);
    const push = forUser('signed@acme.test')[0]!;
    expect(push.body.subscription).toMatch(/^projects\/[^/]+\/subscriptions\//);
    expect(decode(push)).toEqual({ emailAddress: 'signed@acme.test', historyId: sandbox.currentHistoryId('signed@acme.test') });
    expect(new Date(push.body.message.publishTime).getTime()).toBeGreaterThan(Date.now() - 10_000);

    const jwt = push.authorization!.replace(/^Bearer /, '');
    const verifier = new OAuth2Client({ endpoints: oauth2ClientEndpoints(sandboxGoogleEndpoints(sandbox.url)) });
    const ticket = await verifier.verifyIdToken({ idToken: jwt, audience: AUDIENCE });
    const claims = ticket.getPayload()!;
    expect(claims.iss).toBe('https://accounts.google.com');
    expect(claims.email).toBe(SERVICE_ACCOUNT);
    expect(claims.email_verified).toBe(true);
    // The wrong audience is refused by the same real verifier.
    await expect(verifier.verifyIdToken({ idToken: jwt, audience: 'https://attacker.example' })).rejects.toThrow(/audience/);
    // A tampered payload fails signature verification.
    const [h, , sig] = jwt.split('.');
    const forged = Buffer.from(JSON.stringify({ ...claims, email: 'evil@x.iam.gserviceaccount.com' })).toString('base64url');
    await expect(verifier.verifyIdToken({ idToken: `${h}.${forged}.${sig}`, audience: AUDIENCE })).rejects.toThrow(/signature/i);
  });

  it('sends at most one push per second per user, coalescing a burst into the latest historyId', async () => {
    const email = 'burst@acme.test';
    await watchedUser(email);
    await until(() => forUser(email).length === 1);
    for (let i = 0; i < 6; i++) sandbox.deliver(email, mime(`burst-${i}`));
    await until(() => forUser(email).length === 2, 3000);
    await new Promise((r) => setTimeout(r, 300));
    const pushes = forUser(email);
    expect(pushes).toHaveLength(2);
    expect(pushes[1]!.at - pushes[0]!.at).toBeGreaterThanOrEqual(950);
    expect(decode(pushes[1]!).historyId).toBe(sandbox.currentHistoryId(email));
  });

  it('only notifies for INBOX changes, redelivers a push answered 500, honours drops and stop', async () => {
    const email = 'retry@acme.test';
    const watch = await watchedUser(email);
    await until(() => forUser(email).length === 1);
    // A SENT-only message is outside the watch's INBOX filter.
    sandbox.deliver(email, mime('sent-only'), { labelIds: ['SENT'] });
    await new Promise((r) => setTimeout(r, 1100));
    expect(forUser(email)).toHaveLength(1);

    answers.push(500);
    sandbox.deliver(email, mime('retry-1'));
    await until(() => forUser(email).length === 3);
    const [failed, retried] = forUser(email).slice(1);
    expect(failed!.body.message.messageId).toBe(retried!.body.message.messageId);
    const attempts = () => sandbox.pushes().filter((p) => p.emailAddress === email && p.messageId === failed!.body.message.messageId);
    await until(() => attempts().length === 2);
    expect(attempts().map((a) => a.status)).toEqual([500, 204]);

    await new Promise((r) => setTimeout(r, 1000));
    sandbox.dropNextPushes(1);
    sandbox.deliver(email, mime('dropped'));
    await until(() => sandbox.pushes().some((p) => p.emailAddress === email && p.status === 'dropped'));
    expect(forUser(email)).toHaveLength(3);

    await watch.stop();
    expect(sandbox.watches().find((w) => w.email === email)!.active).toBe(false);
    await new Promise((r) => setTimeout(r, 1000));
    sandbox.deliver(email, mime('after-stop'));
    await new Promise((r) => setTimeout(r, 200));
    expect(forUser(email)).toHaveLength(3);
  });
});
