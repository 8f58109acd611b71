// A process that died between committing an outbound record and enqueueing its job leaves the
// record `queued` with no job. `ops send.requeue` finds such records and enqueues them again; the
// job then sends exactly once. Workers are off here so the job table can be inspected and the
// job run by hand, deterministically.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceModule } from '../../src/bootstrap/module.js';
import { sendModule } from '../../src/bootstrap/send.module.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import type { JobHandler } from '../../src/jobs/job-map.js';
import type { JobQueue } from '../../src/jobs/job-queue.js';
import { MAILBOX_ADDRESS_AAD } from '../../src/mailboxes/message-content.js';
import { GmailAdapter } from '../../src/providers/google/gmail.adapter.js';
import { sandboxGoogleEndpoints } from '../../src/providers/google/google-endpoints.js';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { connectGoogleSandboxUser } from '../../src/sandbox/google/google-sandbox-connect.client.js';
import { newId } from '../../src/storage/ids.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

const AGENT = 'requeue@acme.test';

let svc: TestService;
let google: GoogleSandbox;
let send: ServiceModule;
let tenant: { tenantId: string; apiKey: string };
let adminKey: string;
let mailboxId: string;

beforeAll(async () => {
  google = await startGoogleSandbox();
  const user = await connectGoogleSandboxUser(google.endpoints, { email: AGENT, scopes: ['openid', 'email', 'https://www.googleapis.com/auth/gmail.modify'] });
  svc = await startTestService({
    workers: false,
    modules: async (core, services) => {
      send = sendModule(core, services, { providers: async () => new GmailAdapter({ endpoints: sandboxGoogleEndpoints(google.url), accessToken: async () => user.accessToken }) });
      return [tenancyModule(core), send];
    },
  });
  tenant = await svc.createTenant();
  adminKey = (await svc.core.apiKeys.issue({ admin: true })).key;
  mailboxId = newId('mailbox');
  await svc.core.prisma.mailbox.create({
    data: {
      id: mailboxId,
      tenantId: tenant.tenantId,
      provider: 'google',
      addressEnc: new Uint8Array(await svc.core.dataKeys.encryptFor({ type: 'mailbox', id: mailboxId }, AGENT, MAILBOX_ADDRESS_AAD(mailboxId))),
      addressIndex: svc.core.blindIndex.emailIndex(AGENT),
    },
  });
}, 120_000);

afterAll(async () => {
  await svc?.close();
  await google?.close();
});

async function sendJobs(outboundId: string): Promise<number> {
  const { rows } = await svc.core.db.sql.query<{ n: string | number }>(
    `SELECT count(*) AS n FROM pgboss.job WHERE name = 'send.outbound' AND singleton_key = $1 AND state < 'active'`,
    [outboundId],
  );
  return Number(rows[0]?.n ?? 0);
}

describe('ops send.requeue', () => {
  it('re-enqueues a record whose job was lost, and the job then sends it exactly once', async () => {
    const res = await svc.api(tenant.apiKey, 'POST', `/v1/mailboxes/${mailboxId}/send`, { to: 'dan@customer.example', subject: 'Lost job', text: 'Still arrives.' }, { 'idempotency-key': randomUUID() });
    expect(res.status).toBe(202);
    const outboundId = res.body.outboundId as string;
    expect(await sendJobs(outboundId)).toBe(1);

    // The crash: the record committed, its job is gone.
    await svc.core.db.sql.query(`DELETE FROM pgboss.job WHERE name = 'send.outbound' AND singleton_key = $1`, [outboundId]);
    expect(await sendJobs(outboundId)).toBe(0);

    // Too recent for the default threshold: left alone. Backdated past it: requeued, once.
    const ops = (input: unknown) => svc.api(adminKey, 'POST', '/v1/admin/ops/send.requeue', input);
    expect((await ops({})).body).toEqual({ result: { requeued: 0 } });
    await svc.core.prisma.outboundMessage.update({ where: { id: outboundId }, data: { updatedAt: new Date(Date.now() - 20 * 60_000) } });
    expect((await ops({})).body).toEqual({ result: { requeued: 1 } });
    expect(await sendJobs(outboundId)).toBe(1);

    // Run the registered handler as a worker would, twice (a duplicate job changes nothing).
    let handler: JobHandler<'send.outbound'> | undefined;
    send.jobs?.({ register: (name: string, h: JobHandler<'send.outbound'>) => name === 'send.outbound' && (handler = h) } as unknown as JobQueue);
    expect(await handler!({ outboundId }, { jobId: 'manual-1', attempt: 1 })).toMatchObject({ status: 'done' });
    expect(await handler!({ outboundId }, { jobId: 'manual-2', attempt: 1 })).toEqual({ status: 'skipped', reason: 'already sent' });
    expect(google.sent(AGENT)).toHaveLength(1);
    expect((await svc.api(tenant.apiKey, 'GET', `/v1/outbound/${outboundId}`)).body).toMatchObject({ status: 'sent', attempts: 1 });
  }, 120_000);
});
