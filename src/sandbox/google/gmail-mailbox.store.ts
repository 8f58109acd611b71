import { randomBytes } from 'node:crypto';
import {
  headerValue,
  normalizeMessageId,
  normalizeSubject,
  parseMime,
  referencedIds,
  snippetOf,
  type MimeNode,
} from './gmail-mime.js';

export interface StoredMessage {
  id: string;
  threadId: string;
  raw: Buffer;
  labelIds: string[];
  internalDate: number;
  historyId: string;
  /** Message-ID without brackets, when the message has one. */
  internetMessageId: string | undefined;
  normalizedSubject: string;
  references: string[];
  snippet: string;
  root: MimeNode;
}

export type HistoryType = 'messageAdded' | 'messageDeleted' | 'labelAdded' | 'labelRemoved';

export interface HistoryEntry {
  id: bigint;
  type: HistoryType;
  messageId: string;
  threadId: string;
  /** Labels the message carried right after this change (what Gmail reports in messagesAdded). */
  labelIds: string[];
  changedLabelIds: string[];
}

/** A custom "from" alias (Gmail settings, "Send mail as"); the primary address is implicit. */
export interface SandboxSendAs {
  sendAsEmail: string;
  displayName: string;
  /** `pending` until the owner of the address clicked Gmail's verification link. */
  verificationStatus: 'accepted' | 'pending';
}

export interface SandboxMailbox {
  email: string;
  /** Custom send-as aliases; the primary address is always listed first by sendAs.list. */
  sendAs: SandboxSendAs[];
  sub: string;
  messages: Map<string, StoredMessage>;
  history: HistoryEntry[];
  historyId: bigint;
  /** startHistoryId values below this answer 404, as if Google had discarded older records. */
  historyHorizon: bigint;
}

export type MailboxChangeListener = (mailbox: SandboxMailbox, entry: HistoryEntry) => void;

/**
 * In-memory Gmail mailboxes. History ids grow with random gaps ("History IDs increase
 * chronologically but are not contiguous", users.history.list doc).
 */
export class GmailMailboxStore {
  private readonly mailboxes = new Map<string, SandboxMailbox>();
  private messageCounter = 0;
  private readonly listeners: MailboxChangeListener[] = [];

  constructor(
    private readonly now: () => number,
    /** Keep at most this many history records per mailbox; older ones fall behind the horizon. */
    private readonly historyMaxRecords?: number,
  ) {}

  onChange(listener: MailboxChangeListener): void {
    this.listeners.push(listener);
  }

  get(email: string): SandboxMailbox | undefined {
    return this.mailboxes.get(email.toLowerCase());
  }

  all(): SandboxMailbox[] {
    return [...this.mailboxes.values()];
  }

  ensure(email: string): SandboxMailbox {
    const key = email.toLowerCase();
    let mb = this.mailboxes.get(key);
    if (!mb) {
      const start = BigInt(1_000_000 + Math.floor(Math.random() * 1_000_000));
      mb = {
        email: key,
        sendAs: [],
        sub: String(100_000_000_000_000_000_000n + BigInt('0x' + randomBytes(8).toString('hex'))),
        messages: new Map(),
        history: [],
        historyId: start,
        historyHorizon: start,
      };
      this.mailboxes.set(key, mb);
    }
    return mb;
  }

  private nextHistoryId(mb: SandboxMailbox): bigint {
    mb.historyId += BigInt(1 + Math.floor(Math.random() * 9));
    return mb.historyId;
  }

  private newMessageId(internalDate: number): string {
    this.messageCounter = (this.messageCounter + 1) & 0xfffff;
    return ((BigInt(internalDate) << 20n) | BigInt(this.messageCounter)).toString(16).padStart(16, '0');
  }

  /**
   * Gmail's documented threading: a message joins a thread only when it references (References /
   * In-Reply-To) a message of that thread AND its subject matches. `requestedThreadId` is the
   * threadId a send request named; for sends it is additionally required.
   */
  resolveThread(
    mb: SandboxMailbox,
    root: MimeNode,
    mode: { kind: 'deliver' } | { kind: 'send'; requestedThreadId: string | undefined },
  ): string | undefined {
    const refs = new Set(referencedIds(root.headers).map(normalizeMessageId));
    const subject = normalizeSubject(headerValue(root.headers, 'Subject'));
    if (refs.size === 0) return undefined;
    for (const m of [...mb.messages.values()].reverse()) {
      if (!m.internetMessageId || !refs.has(m.internetMessageId)) continue;
      if (m.normalizedSubject !== subject) continue;
      if (mode.kind === 'send' && m.threadId !== mode.requestedThreadId) continue;
      return m.threadId;
    }
    return undefined;
  }

  addMessage(
    email: string,
    raw: Buffer,
    opts: { labelIds?: string[]; internalDate?: number; threadId?: string; sendThreadId?: string | null } = {},
  ): StoredMessage {
    const mb = this.ensure(email);
    const root = parseMime(raw);
    const internalDate = opts.internalDate ?? this.now();
    const id = this.newMessageId(internalDate);
    const threadId =
      opts.threadId ??
      (opts.sendThreadId !== undefined
        ? this.resolveThread(mb, root, { kind: 'send', requestedThreadId: opts.sendThreadId ?? undefined })
        : this.resolveThread(mb, root, { kind: 'deliver' })) ??
      id;
    const mid = headerValue(root.headers, 'Message-ID');
    const historyId = this.nextHistoryId(mb);
    const message: StoredMessage = {
      id,
      threadId,
      raw,
      labelIds: [...(opts.labelIds ?? ['INBOX', 'UNREAD'])],
      internalDate,
      historyId: historyId.toString(),
      internetMessageId: mid ? normalizeMessageId(mid) : undefined,
      normalizedSubject: normalizeSubject(headerValue(root.headers, 'Subject')),
      references: referencedIds(root.headers),
      snippet: snippetOf(root),
      root,
    };
    mb.messages.set(id, message);
    this.record(mb, {
      id: historyId,
      type: 'messageAdded',
      messageId: id,
      threadId,
      labelIds: [...message.labelIds],
      changedLabelIds: [],
    });
    return message;
  }

  modifyLabels(email: string, messageId: string, add: string[], remove: string[]): StoredMessage | undefined {
    const mb = this.get(email);
    const m = mb?.messages.get(messageId);
    if (!mb || !m) return undefined;
    const added = add.filter((l) => !m.labelIds.includes(l));
    const removed = remove.filter((l) => m.labelIds.includes(l));
    m.labelIds = [...m.labelIds.filter((l) => !removed.includes(l)), ...added];
    if (added.length > 0) {
      const id = this.nextHistoryId(mb);
      m.historyId = id.toString();
      this.record(mb, { id, type: 'labelAdded', messageId, threadId: m.threadId, labelIds: [...m.labelIds], changedLabelIds: added });
    }
    if (removed.length > 0) {
      const id = this.nextHistoryId(mb);
      m.historyId = id.toString();
      this.record(mb, { id, type: 'labelRemoved', messageId, threadId: m.threadId, labelIds: [...m.labelIds], changedLabelIds: removed });
    }
    return m;
  }

  deleteMessage(email: string, messageId: string): boolean {
    const mb = this.get(email);
    const m = mb?.messages.get(messageId);
    if (!mb || !m) return false;
    mb.messages.delete(messageId);
    this.record(mb, {
      id: this.nextHistoryId(mb),
      type: 'messageDeleted',
      messageId,
      threadId: m.threadId,
      labelIds: [...m.labelIds],
      changedLabelIds: [],
    });
    return true;
  }

  /** Adds or replaces a custom send-as alias of `email` (what the user does in Gmail's settings). */
  setSendAs(email: string, alias: SandboxSendAs): void {
    const mb = this.ensure(email);
    const address = alias.sendAsEmail.toLowerCase();
    mb.sendAs = [...mb.sendAs.filter((a) => a.sendAsEmail !== address), { ...alias, sendAsEmail: address }];
  }

  removeSendAs(email: string, address: string): void {
    const mb = this.ensure(email);
    mb.sendAs = mb.sendAs.filter((a) => a.sendAsEmail !== address.toLowerCase());
  }

  /** Forget history up to now (or `before`): older startHistoryIds then answer 404. */
  expireHistory(email: string, before?: bigint): void {
    const mb = this.ensure(email);
    mb.historyHorizon = before ?? mb.historyId;
    mb.history = mb.history.filter((h) => h.id > mb.historyHorizon);
  }

  private record(mb: SandboxMailbox, entry: HistoryEntry): void {
    mb.history.push(entry);
    if (this.historyMaxRecords !== undefined && mb.history.length > this.historyMaxRecords) {
      const dropped = mb.history.splice(0, mb.history.length - this.historyMaxRecords);
      mb.historyHorizon = dropped[dropped.length - 1]!.id;
    }
    for (const l of this.listeners) l(mb, entry);
  }
}
