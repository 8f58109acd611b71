import type { AuditService } from '../audit/audit.service.js';
import type { BlindIndex } from '../crypto/blind-index.js';
import { isCryptoError } from '../crypto/crypto-error.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { ATTACHMENT_FILENAME_AAD, decodeMessageContent, MESSAGE_CONTENT_AAD, type MessageContent } from '../mailboxes/message-content.js';
import type { DataSubjectRepository, SubjectMessageRow } from '../storage/data-subject.repository.js';

export interface DataSubjectExport {
  object: 'data_subject_export';
  email: string;
  generatedAt: string;
  mailboxes: Array<{ id: string; provider: string; status: string; connectedAt: string }>;
  messages: Array<{
    id: string;
    mailboxId: string;
    direction: string;
    receivedAt: string;
    /** How the subject appears on the message: from, to, cc, bcc, reply_to. */
    roles: string[];
    content: Omit<MessageContent, 'v'>;
    attachments: Array<{ id: string; filename: string | null; contentType: string; size: number; scanStatus: string; isInline: boolean }>;
  }>;
  /** Messages found by address whose mailbox is being purged (their key is already destroyed). */
  unavailable: number;
}

export interface EraseResult {
  object: 'data_subject_erasure';
  messages: number;
  attachments: number;
  blobs: number;
  messageAddresses: number;
  threadRefs: number;
}

export interface DataSubjectActor {
  actorType: 'api_key' | 'ops';
  actorId: string;
}

const PAGE = 200;

/**
 * GDPR access (Art. 15) and erasure (Art. 17) for one address across a tenant's mailboxes,
 * found through the `message_addresses` blind index. Both are audited with the index (a keyed
 * HMAC), never the address itself.
 */
export class DataSubjectService {
  constructor(
    private readonly repo: DataSubjectRepository,
    private readonly dataKeys: DataKeyService,
    private readonly blindIndex: BlindIndex,
    private readonly audit: AuditService,
    private readonly clock: () => Date,
    /** Upper bound on one export; larger ones are refused (ask ops for an offline export). */
    private readonly maxMessages = 10_000,
  ) {}

  async export(tenantId: string, email: string, actor: DataSubjectActor): Promise<DataSubjectExport> {
    const addressIndex = this.blindIndex.emailIndex(email);
    const out: DataSubjectExport = {
      object: 'data_subject_export',
      email,
      generatedAt: this.clock().toISOString(),
      mailboxes: (await this.repo.mailboxesWithAddress(tenantId, addressIndex)).map((m) => ({ id: m.id, provider: m.provider, status: m.status, connectedAt: m.createdAt.toISOString() })),
      messages: [],
      unavailable: 0,
    };
    let after: string | undefined;
    for (;;) {
      const ids = await this.repo.messageIdsPage(tenantId, addressIndex, after, PAGE);
      if (ids.length === 0) break;
      for (const row of await this.repo.loadMessages(tenantId, addressIndex, ids)) {
        const message = await this.decrypt(row);
        if (message) out.messages.push(message);
        else out.unavailable++;
      }
      if (out.messages.length > this.maxMessages) throw new ExportTooLargeError(this.maxMessages);
      after = ids[ids.length - 1];
    }
    await this.audit.record({
      tenantId,
      actorType: actor.actorType,
      actorId: actor.actorId,
      action: 'data_subject.exported',
      targetType: 'data_subject',
      targetId: addressIndex,
      metadata: { messages: out.messages.length, mailboxes: out.mailboxes.length, unavailable: out.unavailable },
    });
    return out;
  }

  async erase(tenantId: string, email: string, actor: DataSubjectActor): Promise<EraseResult> {
    const addressIndex = this.blindIndex.emailIndex(email);
    const total: EraseResult = { object: 'data_subject_erasure', messages: 0, attachments: 0, blobs: 0, messageAddresses: 0, threadRefs: 0 };
    for (;;) {
      // Always the first page: erased messages leave the index, so the next page moves up.
      const ids = await this.repo.messageIdsPage(tenantId, addressIndex, undefined, PAGE);
      if (ids.length === 0) break;
      const n = await this.repo.eraseMessages(tenantId, ids);
      if (n.messages === 0) break;
      total.messages += n.messages;
      total.attachments += n.attachments;
      total.blobs += n.blobs;
      total.messageAddresses += n.messageAddresses;
      total.threadRefs += n.threadRefs;
    }
    await this.audit.record({
      tenantId,
      actorType: actor.actorType,
      actorId: actor.actorId,
      action: 'data_subject.erased',
      targetType: 'data_subject',
      targetId: addressIndex,
      metadata: { messages: total.messages, attachments: total.attachments, blobs: total.blobs, threadRefs: total.threadRefs },
    });
    return total;
  }

  private async decrypt(row: SubjectMessageRow): Promise<DataSubjectExport['messages'][number] | null> {
    const owner = { type: 'mailbox', id: row.mailboxId } as const;
    try {
      const { v: _v, ...content } = decodeMessageContent(await this.dataKeys.decryptFor(owner, row.contentEnc, MESSAGE_CONTENT_AAD(row.id)));
      const attachments = [];
      for (const a of row.attachments) {
        const filename = a.filenameEnc ? (await this.dataKeys.decryptFor(owner, a.filenameEnc, ATTACHMENT_FILENAME_AAD(a.id))).toString('utf8') : null;
        attachments.push({ id: a.id, filename, contentType: a.contentType, size: a.size, scanStatus: a.scanStatus, isInline: a.isInline });
      }
      return { id: row.id, mailboxId: row.mailboxId, direction: row.direction, receivedAt: row.receivedAt.toISOString(), roles: row.roles, content, attachments };
    } catch (err) {
      if (isCryptoError(err, 'key_destroyed')) return null;
      throw err;
    }
  }
}

export class ExportTooLargeError extends Error {
  override readonly name = 'ExportTooLargeError';
  constructor(readonly limit: number) {
    super(`export exceeds ${limit} messages`);
  }
}
