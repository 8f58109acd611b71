// Break-glass: the only operator path to mail content. Reason and ticket required, bound to one
// mailbox, expires, every open/read/close audited, the tenant notified.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lifecycleModule } from '../../src/bootstrap/lifecycle.module.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { EVENT_DATA_AAD as OUTBOX_DATA_AAD } from '../../src/events/outbox.service.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { seedMailbox } from './purge-seed.fixture.js';

const BIN = fileURLToPath(new URL('../../bin/mailbox-connector.js', import.meta.url));
let svc: TestService;
let adminKey: string;

beforeAll(async () => {
  svc = await startTestService({ modules: async (core, services) => [tenancyModule(core), lifecycleModule(core, services)] });
  adminKey = (await svc.core.apiKeys.issue({ admin: true })).key;
}, 60_000);
afterAll(async () => svc?.close());

const ops = (name: string, input: Record<string, unknown>, key = adminKey) => svc.api(key, 'POST', `/v1/admin/ops/${name}`, input);

describe('break-glass', () => {
  it('is refused without a reason or a ticket, and leaves no session behind', async () => {
    const t = await svc.createTenant();
    const m = await seedMailbox(svc.core, { tenantId: t.tenantId, address: 'x@acme.example', messages: [{ from: 'a@example.org', to: ['x@acme.example'], subject: 's', text: 'secret text' }] });
    const noReason = await ops('breakGlass.open', { mailboxId: m.mailboxId, ticket: 'SEC-1' });
    expect(noReason.status).toBe(400);
    expect(noReason.body.error.code).toBe('break_glass_reason_required');
    const vague = await ops('breakGlass.open', { mailboxId: m.mailboxId, reason: 'because', ticket: 'SEC-1' });
    expect(vague.body.error.code).toBe('break_glass_reason_required');
    const noTicket = await ops('breakGlass.open', { mailboxId: m.mailboxId, reason: 'investigating a phishing report' });
    expect(noTicket.body.error.code).toBe('break_glass_ticket_required');
    // Tenant keys cannot use ops at all.
    expect((await ops('breakGlass.open', { mailboxId: m.mailboxId, reason: 'investigating a phishing report', ticket: 'SEC-1' }, t.apiKey)).status).toBe(403);
    expect(await svc.core.prisma.breakGlassSession.count({ where: { mailboxId: m.mailboxId } })).toBe(0);
    expect(await svc.core.prisma.outboxEvent.count({ where: { mailboxId: m.mailboxId } })).toBe(0);
  });

  it('the CLI refuses to open a session without a reason or a ticket', () => {
    const env = { ...process.env, DATABASE_URL: svc.config.database.url ?? '', ENCRYPTION_KEYS: svc.config.encryptionKeys ?? '', LOG_LEVEL: 'silent', NODE_ENV: 'test' };
    const noReason = spawnSync(process.execPath, [BIN, 'break-glass', 'open', '--mailbox', 'mbx_x', '--ticket', 'SEC-1'], { env, encoding: 'utf8', timeout: 120_000 });
    expect(noReason.status).toBe(1);
    expect(noReason.stderr).toContain('--reason');
    const noTicket = spawnSync(process.execPath, [BIN, 'break-glass', 'open', '--mailbox', 'mbx_x', '--reason', 'phishing investigation'], { env, encoding: 'utf8', timeout: 120_000 });
    expect(noTicket.status).toBe(1);
    expect(noTicket.stderr).toContain('--ticket');
  }, 120_000);

  it('with a reason and ticket: audited, the tenant is notified, reads only its mailbox until closed or expired', async () => {
    const core = svc.core;
    const t = await svc.createTenant();
    const other = await svc.createTenant();
    const m = await seedMailbox(core, {
      tenantId: t.tenantId,
      address: 'help@acme.example',
      messages: [{ from: 'phisher@evil.example', to: ['help@acme.example'], subject: 'reset your password', text: 'click here', attachments: [{ filename: 'invoice.html', content: Buffer.from('<html>') }] }],
    });
    const foreign = await seedMailbox(core, { tenantId: other.tenantId, address: 'x@other.example', messages: [{ from: 'a@example.org', to: ['x@other.example'], subject: 'private', text: 'not yours' }] });

    // Admin keys still cannot read tenant mail through the normal routes.
    expect([403, 404]).toContain((await svc.api(adminKey, 'GET', `/v1/mailboxes/${m.mailboxId}`)).status);

    const open = await ops('breakGlass.open', { mailboxId: m.mailboxId, reason: 'investigating a phishing report from the customer', ticket: 'SEC-4711', minutes: 15, operator: 'erin' });
    expect(open.status).toBe(200);
    const session = open.body.result as { sessionId: string; expiresAt: string; operator: string; tenantId: string };
    expect(session.tenantId).toBe(t.tenantId);
    expect(session.operator).toMatch(/^erin via ops:/);
    expect(new Date(session.expiresAt).getTime() - Date.now()).toBeGreaterThan(14 * 60_000);

    // The tenant is told, with the reason and ticket (tenant key; no mail content).
    const event = await core.prisma.outboxEvent.findFirstOrThrow({ where: { mailboxId: m.mailboxId, type: 'mailbox.break_glass_opened' } });
    expect(event.tenantId).toBe(t.tenantId);
    const data = JSON.parse((await core.dataKeys.decryptFor({ type: 'tenant', id: t.tenantId }, event.dataEnc!, OUTBOX_DATA_AAD(event.id))).toString());
    expect(data).toMatchObject({ sessionId: session.sessionId, reason: 'investigating a phishing report from the customer', ticketRef: 'SEC-4711' });

    const read = await ops('breakGlass.read', { sessionId: session.sessionId, messageId: m.messageIds[0], operator: 'erin' });
    expect(read.status).toBe(200);
    expect(read.body.result.message).toMatchObject({ id: m.messageIds[0], content: { subject: 'reset your password', text: 'click here' }, attachments: [{ filename: 'invoice.html' }] });

    // Bound to its mailbox: another tenant's message is refused (and the attempt audited).
    const wrong = await ops('breakGlass.read', { sessionId: session.sessionId, messageId: foreign.messageIds[0], operator: 'erin' });
    expect(wrong.status).toBe(403);
    expect(wrong.body.error.code).toBe('break_glass_wrong_mailbox');
    expect(JSON.stringify(wrong.body)).not.toContain('not yours');

    const close = await ops('breakGlass.close', { sessionId: session.sessionId, operator: 'erin' });
    expect(close.body.result.endedAt).not.toBeNull();
    const afterClose = await ops('breakGlass.read', { sessionId: session.sessionId, messageId: m.messageIds[0], operator: 'erin' });
    expect(afterClose.body.error.code).toBe('break_glass_session_ended');

    // Expiry: a session whose time is up reads nothing.
    const second = (await ops('breakGlass.open', { mailboxId: m.mailboxId, reason: 'follow-up on the phishing report', ticket: 'SEC-4711', minutes: 1, operator: 'erin' })).body.result as { sessionId: string };
    await core.prisma.breakGlassSession.update({ where: { id: second.sessionId }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const expired = await ops('breakGlass.read', { sessionId: second.sessionId, messageId: m.messageIds[0], operator: 'erin' });
    expect(expired.body.error.code).toBe('break_glass_session_expired');
    const active = (await ops('breakGlass.list', {})).body.result as Array<{ sessionId: string }>;
    expect(active.map((s) => s.sessionId)).not.toContain(second.sessionId);

    // Every step is in the audit trail, as break_glass, with reason and ticket.
    const trail = await core.prisma.auditEntry.findMany({ where: { actorType: 'break_glass', tenantId: t.tenantId }, orderBy: { seq: 'asc' } });
    expect(trail.map((e) => e.action)).toEqual([
      'break_glass.opened',
      'break_glass.read',
      'break_glass.read_refused', // another tenant's message
      'break_glass.closed',
      'break_glass.read_refused', // after close
      'break_glass.opened',
      'break_glass.read_refused', // after expiry
    ]);
    expect(trail[0]).toMatchObject({ reason: 'investigating a phishing report from the customer', targetId: m.mailboxId });
    expect(trail[0]!.metadata).toMatchObject({ ticketRef: 'SEC-4711', sessionId: session.sessionId });
    expect(trail[1]).toMatchObject({ targetType: 'message', targetId: m.messageIds[0] });
    const refused = await core.prisma.auditEntry.findFirstOrThrow({ where: { action: 'break_glass.read_refused', targetId: foreign.messageIds[0] } });
    expect(refused.metadata).toMatchObject({ code: 'wrong_mailbox' });
    // The tenant sees it in its own audit trail.
    expect(await core.prisma.auditEntry.count({ where: { tenantId: t.tenantId, action: 'break_glass.opened' } })).toBe(2);
    expect((await core.audit.verify()).ok).toBe(true);
    expect(svc.logs.join('\n')).not.toContain('click here');
  }, 60_000);
});
