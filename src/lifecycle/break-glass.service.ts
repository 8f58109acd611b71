import type { AuditService } from '../audit/audit.service.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { ATTACHMENT_FILENAME_AAD, decodeMessageContent, MESSAGE_CONTENT_AAD, type MessageContent } from '../mailboxes/message-content.js';
import type { BreakGlassRepository, BreakGlassSessionRecord } from '../storage/break-glass.repository.js';
import { newId } from '../storage/ids.js';
import type { LifecycleEventWriter } from './lifecycle-event.writer.js';

export type BreakGlassRefusal = 'reason_required' | 'ticket_required' | 'mailbox_not_found' | 'mailbox_unavailable' | 'session_not_found' | 'session_ended' | 'session_expired' | 'wrong_mailbox' | 'message_not_found';

/** A refused break-glass request. `code` tells the operator exactly why. */
export class BreakGlassRefusedError extends Error {
  override readonly name = 'BreakGlassRefusedError';
  constructor(
    readonly code: BreakGlassRefusal,
    message: string,
  ) {
    super(message);
  }
}

export interface BreakGlassSessionView {
  sessionId: string;
  tenantId: string;
  mailboxId: string;
  operator: string;
  reason: string;
  ticketRef: string;
  expiresAt: string;
  createdAt: string;
  endedAt: string | null;
}

export interface BreakGlassRead {
  sessionId: string;
  expiresAt: string;
  message: {
    id: string;
    mailboxId: string;
    direction: string;
    receivedAt: string;
    content: Omit<MessageContent, 'v'>;
    attachments: Array<{ id: string; filename: string | null; contentType: string; size: number; scanStatus: string }>;
  };
}

export const MIN_REASON_LENGTH = 10;
export const MAX_SESSION_MINUTES = 240;

/**
 * The only path by which an operator can decrypt mail content (Limited Use §3.1: humans read
 * data only for security, legal compliance or with the user's agreement). A session needs a
 * reason and a ticket reference, is bound to one mailbox, expires, and every open, read and
 * close is audited (actor type `break_glass`). Opening one notifies the tenant
 * (`mailbox.break_glass_opened`).
 */
export class BreakGlassService {
  constructor(
    private readonly repo: BreakGlassRepository,
    private readonly dataKeys: DataKeyService,
    private readonly audit: AuditService,
    private readonly events: LifecycleEventWriter,
    private readonly clock: () => Date,
  ) {}

  async open(input: { mailboxId: string; reason: string; ticketRef: string; minutes: number; operator: string }): Promise<BreakGlassSessionView> {
    const reason = input.reason.trim();
    const ticketRef = input.ticketRef.trim();
    if (reason.length < MIN_REASON_LENGTH) throw new BreakGlassRefusedError('reason_required', `a reason of at least ${MIN_REASON_LENGTH} characters is required`);
    if (!ticketRef) throw new BreakGlassRefusedError('ticket_required', 'a ticket reference is required');
    const minutes = Math.min(Math.max(1, Math.floor(input.minutes)), MAX_SESSION_MINUTES);
    const now = this.clock();
    const expiresAt = new Date(now.getTime() + minutes * 60_000);
    const { session, pending } = await this.repo.transaction(async (tx) => {
      const mailbox = await this.repo.findMailbox(tx, input.mailboxId);
      if (!mailbox) throw new BreakGlassRefusedError('mailbox_not_found', 'mailbox not found');
      if (mailbox.status === 'disconnecting' || mailbox.status === 'purged') throw new BreakGlassRefusedError('mailbox_unavailable', `mailbox is ${mailbox.status}`);
      const session = await this.repo.create(tx, {
        id: newId('breakGlass'),
        tenantId: mailbox.tenantId,
        mailboxId: mailbox.id,
        operator: input.operator,
        reason,
        ticketRef,
        expiresAt,
        createdAt: now,
      });
      await this.audit.record(
        {
          tenantId: mailbox.tenantId,
          actorType: 'break_glass',
          actorId: input.operator,
          action: 'break_glass.opened',
          targetType: 'mailbox',
          targetId: mailbox.id,
          reason,
          metadata: { sessionId: session.id, ticketRef, expiresAt: expiresAt.toISOString(), minutes },
        },
        tx,
      );
      const pending = await this.events.append(tx, {
        tenantId: mailbox.tenantId,
        mailboxId: mailbox.id,
        type: 'mailbox.break_glass_opened',
        refs: {},
        data: {
          sessionId: session.id,
          operator: input.operator,
          reason: reason.slice(0, 500),
          ticketRef,
          openedAt: now.toISOString(),
          expiresAt: expiresAt.toISOString(),
        },
      });
      return { session, pending };
    });
    await this.events.dispatch([pending]);
    return view(session);
  }

  async read(input: { sessionId: string; messageId: string; operator: string }): Promise<BreakGlassRead> {
    const session = await this.activeSession(input.sessionId, input.operator, input.messageId);
    const row = await this.repo.message(input.messageId);
    if (!row) await this.refuse(session, input.operator, input.messageId, 'message_not_found', 'message not found');
    if (row!.mailboxId !== session.mailboxId) await this.refuse(session, input.operator, input.messageId, 'wrong_mailbox', 'the message belongs to another mailbox than the session');
    const msg = row!;
    const owner = { type: 'mailbox', id: msg.mailboxId } as const;
    const { v: _v, ...content } = decodeMessageContent(await this.dataKeys.decryptFor(owner, msg.contentEnc, MESSAGE_CONTENT_AAD(msg.id)));
    const attachments = [];
    for (const a of msg.attachments) {
      const filename = a.filenameEnc ? (await this.dataKeys.decryptFor(owner, a.filenameEnc, ATTACHMENT_FILENAME_AAD(a.id))).toString('utf8') : null;
      attachments.push({ id: a.id, filename, contentType: a.contentType, size: a.size, scanStatus: a.scanStatus });
    }
    // Audited before the content leaves this method: a read that is not recorded never happens.
    await this.audit.record({
      tenantId: session.tenantId,
      actorType: 'break_glass',
      actorId: input.operator,
      action: 'break_glass.read',
      targetType: 'message',
      targetId: msg.id,
      reason: session.reason,
      metadata: { sessionId: session.id, ticketRef: session.ticketRef, mailboxId: session.mailboxId },
    });
    return {
      sessionId: session.id,
      expiresAt: session.expiresAt.toISOString(),
      message: { id: msg.id, mailboxId: msg.mailboxId, direction: msg.direction, receivedAt: msg.receivedAt.toISOString(), content, attachments },
    };
  }

  async close(input: { sessionId: string; operator: string }): Promise<BreakGlassSessionView> {
    const session = await this.repo.find(input.sessionId);
    if (!session) throw new BreakGlassRefusedError('session_not_found', 'break-glass session not found');
    const endedAt = this.clock();
    const ended = await this.repo.end(session.id, endedAt);
    if (ended) {
      await this.audit.record({
        tenantId: session.tenantId,
        actorType: 'break_glass',
        actorId: input.operator,
        action: 'break_glass.closed',
        targetType: 'mailbox',
        targetId: session.mailboxId,
        metadata: { sessionId: session.id, ticketRef: session.ticketRef },
      });
    }
    return view({ ...session, endedAt: session.endedAt ?? endedAt });
  }

  async list(opts: { activeOnly: boolean; mailboxId?: string }): Promise<BreakGlassSessionView[]> {
    const rows = await this.repo.list({ ...(opts.activeOnly ? { activeAt: this.clock() } : {}), ...(opts.mailboxId ? { mailboxId: opts.mailboxId } : {}), limit: 200 });
    return rows.map(view);
  }

  private async activeSession(sessionId: string, operator: string, messageId: string): Promise<BreakGlassSessionRecord> {
    const session = await this.repo.find(sessionId);
    if (!session) throw new BreakGlassRefusedError('session_not_found', 'break-glass session not found');
    if (session.endedAt) await this.refuse(session, operator, messageId, 'session_ended', 'the break-glass session was closed');
    if (session.expiresAt.getTime() <= this.clock().getTime()) await this.refuse(session, operator, messageId, 'session_expired', 'the break-glass session has expired');
    return session;
  }

  /** Refused attempts are audited too: probing is as interesting as reading. */
  private async refuse(session: BreakGlassSessionRecord, operator: string, messageId: string, code: BreakGlassRefusal, message: string): Promise<never> {
    await this.audit.record({
      tenantId: session.tenantId,
      actorType: 'break_glass',
      actorId: operator,
      action: 'break_glass.read_refused',
      targetType: 'message',
      targetId: messageId,
      metadata: { sessionId: session.id, code },
    });
    throw new BreakGlassRefusedError(code, message);
  }
}

function view(s: BreakGlassSessionRecord): BreakGlassSessionView {
  return {
    sessionId: s.id,
    tenantId: s.tenantId,
    mailboxId: s.mailboxId,
    operator: s.operator,
    reason: s.reason,
    ticketRef: s.ticketRef,
    expiresAt: s.expiresAt.toISOString(),
    createdAt: s.createdAt.toISOString(),
    endedAt: s.endedAt ? s.endedAt.toISOString() : null,
  };
}
