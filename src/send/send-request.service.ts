import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { AuditService } from '../audit/audit.service.js';
import type { BlindIndex } from '../crypto/blind-index.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import type { JobQueue } from '../jobs/job-queue.js';
import { decodeMessageContent, MAILBOX_ADDRESS_AAD, MESSAGE_CONTENT_AAD, type MessageAddress } from '../mailboxes/message-content.js';
import type { Logger } from '../observability/logger.js';
import type { ProviderName } from '../providers/mail-provider.port.js';
import type { LimitsPort } from '../providers/ports.js';
import type { Scanner } from '../scan/scanner.port.js';
import type { BlobStore } from '../storage/blob.store.js';
import { newId } from '../storage/ids.js';
import type { MailboxRecord, MailboxRepository } from '../storage/mailbox.repository.js';
import type { MessageReadRepository, MessageRecord } from '../storage/message-read.repository.js';
import type { IdempotencyHit, OutboundRepository } from '../storage/outbound.repository.js';
import type { EmailAddress } from './address-policy.js';
import { encodeOutboundContent, OUTBOUND_CONTENT_AAD, type OutboundContent } from './outbound-content.js';
import {
  composeNew,
  composeReply,
  MessageCompositionError,
  systemComposerDeps,
  type ComposedMessage,
  type ComposerDeps,
  type OutgoingAttachment,
} from './reply-composer.js';
import { requestHash } from './request-hash.js';
import { checkComposedSize, checkRequestSize } from './send-limits.js';
import { SendRejectedError } from './send-rejection.js';
import { SendAsUnavailableError, type SendAsDirectory, type SendAsRefusal } from './send-as.directory.js';
import { base64DecodedSize, type NewMessageBody, type ReplyBody } from './send-request.schema.js';

export interface AcceptedSend {
  /** 202 for a new outbound record, and for a replay of the same request (the same answer). */
  status: 202;
  body: { outboundId: string; status: 'queued' };
  /** True when this answer replays an earlier request with the same Idempotency-Key. */
  replayed: boolean;
}

export interface SendRequestActor {
  tenantId: string;
  /** The API key id, for the audit trail. */
  apiKeyId: string;
}

export interface SendRequestDeps {
  outbound: OutboundRepository;
  messages: Pick<MessageReadRepository, 'findMessageForTenant'>;
  mailboxes: Pick<MailboxRepository, 'findForTenant'>;
  dataKeys: Pick<DataKeyService, 'encryptFor' | 'decryptFor'>;
  blindIndex: Pick<BlindIndex, 'messageIdIndex'>;
  blobs: Pick<BlobStore, 'write' | 'delete'>;
  scanner: Scanner;
  jobs: Pick<JobQueue, 'enqueue'>;
  audit: Pick<AuditService, 'record'>;
  logger: Pick<Logger, 'warn' | 'info'>;
  clock: () => Date;
  composer?: ComposerDeps;
  /** What each provider accepts (providers/<name>/*-limits.ts). */
  limits: Record<ProviderName, LimitsPort>;
  /** The mailboxes' send-as aliases; without it only the mailbox's own address may be From. */
  sendAs?: Pick<SendAsDirectory, 'check'> & Partial<Pick<SendAsDirectory, 'deniedRecently'>>;
}

const FROM_REFUSED: Record<SendAsRefusal, string> = {
  not_an_alias:
    'from is neither the mailbox address nor one of its send-as addresses; add the alias in the mailbox (Gmail: Settings > Accounts > Send mail as; Microsoft 365: an email alias of the user), use from.delegated for a Microsoft 365 Send As / Send on Behalf permission, or leave from out',
  alias_not_verified: 'from is a send-as address of the mailbox that is not verified yet; the mailbox owner must confirm it (Gmail sends a verification link) before it can be used',
  send_as_denied:
    'the provider refused to send from this address for this mailbox at a recent send (Microsoft 365: no Send As or Send on Behalf permission for the connected account); an Exchange administrator must grant it — retry after it is granted',
  alias_rewritten:
    'the provider sent the last message from this alias with the mailbox’s primary address instead (Microsoft 365 rewrites aliases unless the organization enabled SendFromAliasEnabled); send without from, or retry once sending from aliases is enabled',
  delegation_not_supported: 'from.delegated is for Microsoft 365 Send As / Send on Behalf permissions; on this provider use one of the mailbox’s verified send-as addresses without delegated',
  shared_scope_missing:
    'sending from another mailbox’s address needs the Mail.Send.Shared permission, which this connection was not granted; connect the shared mailbox itself (POST /v1/connect-sessions with "mailbox") or use one of the mailbox’s own addresses',
};

/** The delegated Graph permission a user token needs to send from another mailbox (outlook-send-mail-from-other-user). */
const MAIL_SEND_SHARED = /(^|\/)mail\.send\.shared$/i;

interface DecodedAttachment {
  filename: string;
  contentType: string;
  content: Buffer;
}

type Operation =
  | { kind: 'reply'; messageId: string; body: ReplyBody }
  | { kind: 'new'; mailboxId: string; body: NewMessageBody };

const INACTIVE_MESSAGE: Record<string, string> = {
  reauth_required: 'the mailbox needs to be reconnected by the customer (status reauth_required) before it can send',
  disconnecting: 'the mailbox is being disconnected (status disconnecting) and can no longer send',
  purged: 'the mailbox was disconnected and its data purged (status purged); it can no longer send',
};

/**
 * The request side of sending (issue 7): validate, compose, store encrypted as a `queued`
 * outbound record, enqueue `send.outbound`, answer 202. Nothing here talks to a provider.
 *
 * Idempotency (Stripe's model): the (tenant, Idempotency-Key) pair is unique in the database.
 * A repeat with the same fingerprint replays the first answer; another fingerprint is a 409.
 * Requests refused with a 4xx leave nothing behind, so the key can be used again once fixed.
 */
export class SendRequestService {
  private readonly composer: ComposerDeps;

  constructor(private readonly deps: SendRequestDeps) {
    this.composer = deps.composer ?? systemComposerDeps;
  }

  reply(actor: SendRequestActor, idempotencyKey: string, messageId: string, rawBody: unknown, body: ReplyBody): Promise<AcceptedSend> {
    return this.accept(actor, idempotencyKey, requestHash('reply', messageId, rawBody), { kind: 'reply', messageId, body });
  }

  send(actor: SendRequestActor, idempotencyKey: string, mailboxId: string, rawBody: unknown, body: NewMessageBody): Promise<AcceptedSend> {
    return this.accept(actor, idempotencyKey, requestHash('send', mailboxId, rawBody), { kind: 'new', mailboxId, body });
  }

  private async accept(actor: SendRequestActor, key: string, hash: string, op: Operation): Promise<AcceptedSend> {
    const earlier = await this.deps.outbound.findByIdempotencyKey(actor.tenantId, key);
    if (earlier) return replay(earlier, hash);

    // Target and mailbox: unknown ids and other tenants' ids are the same 404.
    let original: MessageRecord | null = null;
    let mailbox: MailboxRecord | null;
    if (op.kind === 'reply') {
      original = await this.deps.messages.findMessageForTenant(actor.tenantId, op.messageId);
      if (!original) throw new SendRejectedError('not_found', 'message not found');
      mailbox = await this.deps.mailboxes.findForTenant(actor.tenantId, original.mailboxId);
    } else {
      mailbox = await this.deps.mailboxes.findForTenant(actor.tenantId, op.mailboxId);
    }
    if (!mailbox) throw new SendRejectedError('not_found', op.kind === 'reply' ? 'message not found' : 'mailbox not found');
    if (mailbox.status !== 'active') {
      throw new SendRejectedError('mailbox_not_active', INACTIVE_MESSAGE[mailbox.status] ?? `the mailbox is ${mailbox.status} and cannot send`, { mailboxStatus: mailbox.status });
    }

    const body = op.body;
    const attachmentsIn = body.attachments ?? [];
    checkRequestSize(this.deps.limits[mailbox.provider], {
      textBytes: Buffer.byteLength(body.text ?? ''),
      htmlBytes: Buffer.byteLength(body.html ?? ''),
      attachments: attachmentsIn.map((a) => ({ size: base64DecodedSize(a.contentBase64) })),
    });
    const attachments: DecodedAttachment[] = attachmentsIn.map((a) => ({ filename: a.filename, contentType: a.contentType, content: Buffer.from(a.contentBase64, 'base64') }));

    const owner = { type: 'mailbox' as const, id: mailbox.id };
    const mailboxAddress = (await this.deps.dataKeys.decryptFor(owner, mailbox.addressEnc, MAILBOX_ADDRESS_AAD(mailbox.id))).toString('utf8');
    const from = await this.fromAddress(mailbox, mailboxAddress, body);
    const composed = await this.compose(op, original, owner, from, attachments);
    checkComposedSize(this.deps.limits[mailbox.provider], composed.mime.length);

    // Scanned like incoming attachments; nothing unscanned or infected leaves through us.
    await this.scan(attachments);

    const outboundId = newId('outbound');
    const mimeBlob = await this.deps.blobs.write({ tenantId: actor.tenantId, mailboxId: mailbox.id, kind: 'outbound_mime', content: composed.mime });
    const content: OutboundContent = {
      v: 1,
      kind: op.kind,
      internetMessageId: composed.messageId,
      mime: { blobId: mimeBlob.blobId, size: mimeBlob.size, sha256: sha256(composed.mime) },
      headers: {
        from: plainAddress(composed.headers.from),
        to: composed.headers.to.map(plainAddress),
        cc: composed.headers.cc.map(plainAddress),
        bcc: composed.headers.bcc.map(plainAddress),
        subject: composed.headers.subject,
        inReplyTo: composed.headers.inReplyTo ?? null,
        references: composed.headers.references,
      },
      attachments: attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, size: a.content.length, sha256: sha256(a.content) })),
      provider: {
        threadId: original?.providerThreadId ?? null,
        // Every reply, a delegated From's included, goes out on the original (Graph's reply with
        // MIME, no draft): Exchange checks the From there, so a refusal leaves nothing behind.
        replyToProviderMessageId: original?.providerMessageId ?? null,
      },
    };
    const contentEnc = await this.deps.dataKeys.encryptFor(owner, encodeOutboundContent(content), OUTBOUND_CONTENT_AAD(outboundId));
    const row = {
      id: outboundId,
      tenantId: actor.tenantId,
      mailboxId: mailbox.id,
      kind: op.kind,
      replyToMessageId: original?.id ?? null,
      idempotencyKey: key,
      requestHash: hash,
      // Recorded before any send attempt: sync recognises the copy that comes back by it.
      messageIdIndex: this.deps.blindIndex.messageIdIndex(composed.messageId),
      contentEnc,
      threadKey: original?.threadKey ?? null,
      createdAt: this.deps.clock(),
    };
    try {
      // The record and its audit entry commit together or not at all.
      await this.deps.outbound.transaction(async (tx) => {
        await this.deps.outbound.insertQueued(tx, row);
        await this.deps.audit.record(
          {
            tenantId: actor.tenantId,
            actorType: 'api_key',
            actorId: actor.apiKeyId,
            action: op.kind === 'reply' ? 'message.reply_queued' : 'message.send_queued',
            targetType: 'outbound',
            targetId: outboundId,
            metadata: {
              mailboxId: mailbox.id,
              ...(original ? { messageId: original.id } : {}),
              recipients: composed.envelope.to.length,
              attachments: attachments.length,
              bytes: composed.mime.length,
            },
          },
          tx,
        );
      });
    } catch (err) {
      await this.deps.blobs.delete([mimeBlob.blobId]).catch(() => undefined);
      // A concurrent request with the same key committed first (unique (tenant, key)): replay it.
      // Checked by reading, not by driver error codes, which differ between pg and PGlite.
      const winner = await this.deps.outbound.findByIdempotencyKey(actor.tenantId, key);
      if (winner) return replay(winner, hash);
      throw err;
    }

    try {
      await this.deps.jobs.enqueue('send.outbound', { outboundId }, { singletonKey: outboundId });
    } catch (err) {
      // Without a job the record would sit in `queued`; undo it so a retry with the same key starts clean.
      this.deps.logger.warn({ err, outboundId }, 'send.outbound enqueue failed; outbound record removed');
      await this.deps.outbound.deleteUnsent(outboundId);
      await this.deps.blobs.delete([mimeBlob.blobId]).catch(() => undefined);
      throw new SendRejectedError('queue_unavailable', 'the send could not be queued; retry with the same Idempotency-Key');
    }
    return { status: 202, body: { outboundId, status: 'queued' }, replayed: false };
  }

  /**
   * The From of the message: the mailbox's own address unless `from` names another one, which
   * must be a verified send-as alias of the mailbox (asked of the provider, cached per mailbox).
   * The comparison ignores case; the address goes out as the provider spells it.
   */
  private async fromAddress(
    mailbox: MailboxRecord,
    mailboxAddress: string,
    body: ReplyBody | NewMessageBody,
  ): Promise<{ address: string; displayName?: string }> {
    const displayName = body.from?.name ?? body.fromName;
    const named = (address: string) => (displayName ? { address, displayName } : { address });
    const wanted = body.from?.address;
    if (wanted === undefined || wanted.toLowerCase() === mailboxAddress.toLowerCase()) return named(mailboxAddress);
    if (body.from?.delegated) return named(await this.delegatedFrom(mailbox, wanted));
    let verdict;
    try {
      verdict = this.deps.sendAs ? await this.deps.sendAs.check(mailbox, wanted) : ({ ok: false, reason: 'not_an_alias' } as const);
    } catch (err) {
      if (err instanceof SendAsUnavailableError) {
        throw new SendRejectedError('send_as_unavailable', 'the mailbox’s send-as addresses could not be read from the provider; retry with the same Idempotency-Key');
      }
      throw err;
    }
    if (!verdict.ok) throw new SendRejectedError('from_not_allowed', FROM_REFUSED[verdict.reason], { field: 'from', reason: verdict.reason });
    // The caller's display name, else the one the alias carries at the provider.
    return displayName || !verdict.displayName ? named(verdict.address) : { address: verdict.address, displayName: verdict.displayName };
  }

  /**
   * `from.delegated`: an address the connected Microsoft 365 account may send from through
   * Exchange's Send As / Send on Behalf. Graph cannot list those permissions, so the send is
   * attempted and Exchange decides (a refusal fails the outbound with `from_not_allowed`, and
   * later requests for the address are refused here for a while). A user token needs
   * Mail.Send.Shared for it; an organization install's app token (Mail.Send) sends as its mailbox.
   */
  private async delegatedFrom(mailbox: MailboxRecord, wanted: string): Promise<string> {
    const refuse = (reason: SendAsRefusal) => new SendRejectedError('from_not_allowed', FROM_REFUSED[reason], { field: 'from', reason });
    if (mailbox.provider !== 'microsoft') throw refuse('delegation_not_supported');
    if (mailbox.access !== 'organization' && !mailbox.grantedScopes.some((s) => MAIL_SEND_SHARED.test(s.trim()))) throw refuse('shared_scope_missing');
    if (await this.deps.sendAs?.deniedRecently?.(mailbox.id, wanted)) throw refuse('send_as_denied');
    return wanted;
  }

  private async compose(
    op: Operation,
    original: MessageRecord | null,
    owner: { type: 'mailbox'; id: string },
    from: { address: string; displayName?: string },
    attachments: DecodedAttachment[],
  ): Promise<ComposedMessage> {
    const body = op.body;
    const common = {
      mailbox: from,
      body: { ...(body.text !== undefined ? { text: body.text } : {}), ...(body.html !== undefined ? { html: body.html } : {}) },
      ...(body.to && body.to.length > 0 ? { to: body.to } : {}),
      ...(body.cc ? { cc: body.cc } : {}),
      ...(body.bcc ? { bcc: body.bcc } : {}),
      attachments: attachments.map((a): OutgoingAttachment => ({ filename: a.filename, contentType: a.contentType, content: a.content })),
      // Gmail and Graph take recipients from the MIME headers, Bcc included (reply-composer.ts).
      bccDelivery: 'provider_headers' as const,
    };
    try {
      if (op.kind === 'new') return await composeNew({ ...common, subject: op.body.subject }, this.composer);
      const stored = decodeMessageContent(await this.deps.dataKeys.decryptFor(owner, original!.contentEnc, MESSAGE_CONTENT_AAD(original!.id)));
      // A name without an address (a bounce's "MAILER-DAEMON") is nobody to reply to.
      const list = (entries: MessageAddress[]) =>
        entries.flatMap((a) => (a.address === null ? [] : [a.name ? { name: a.name, address: a.address } : { address: a.address }]));
      return await composeReply(
        {
          ...common,
          original: {
            // A Message-ID we synthesized at ingest exists nowhere else: it must not be referenced.
            messageId: stored.messageIdSynthetic ? null : stored.internetMessageId,
            references: stored.references,
            subject: stored.subject,
            from: stored.from ? list([stored.from]) : [],
            replyTo: list(stored.replyTo),
            to: list(stored.to),
            cc: list(stored.cc),
          },
        },
        this.composer,
      );
    } catch (err) {
      if (err instanceof MessageCompositionError) {
        throw new SendRejectedError(err.code, err.message, { issues: err.issues });
      }
      throw err;
    }
  }

  private async scan(attachments: DecodedAttachment[]): Promise<void> {
    for (const [index, a] of attachments.entries()) {
      const verdict = await this.deps.scanner.scan(Readable.from([a.content]), { filename: a.filename, contentType: a.contentType, sizeBytes: a.content.length });
      switch (verdict.status) {
        case 'clean':
          continue;
        case 'infected':
          throw new SendRejectedError('attachment_infected', `attachments[${index}] is infected (${verdict.signature}); nothing was sent`, {
            attachment: index,
            signature: verdict.signature,
          });
        case 'not_configured':
          throw new SendRejectedError('scan_unavailable', 'attachments cannot be sent: no virus scanner is configured');
        case 'error':
          if (verdict.reason === 'too_large') {
            throw new SendRejectedError('message_too_large', `attachments[${index}] is larger than the virus scanner accepts; nothing was sent`, { attachment: index });
          }
          throw new SendRejectedError('scan_unavailable', `attachments could not be scanned (${verdict.reason}); retry with the same Idempotency-Key`);
      }
    }
  }
}

function replay(earlier: IdempotencyHit, hash: string): AcceptedSend {
  if (earlier.requestHash !== hash) {
    throw new SendRejectedError(
      'idempotency_key_reuse',
      'this Idempotency-Key was already used with a different request; use a new key for a new message',
    );
  }
  // The first answer, replayed verbatim; GET /v1/outbound/:id has the current status.
  return { status: 202, body: { outboundId: earlier.id, status: 'queued' }, replayed: true };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function plainAddress(a: EmailAddress): { name?: string; address: string } {
  return a.name ? { name: a.name, address: a.address } : { address: a.address };
}
