import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Message, Recipient } from '@microsoft/microsoft-graph-types';
import { simpleParser, type AddressObject } from 'mailparser';

export type FolderName = 'inbox' | 'sentitems' | 'drafts';

export interface StoredAttachment {
  id: string;
  name: string;
  contentType: string;
  size: number;
  isInline: boolean;
  contentId: string | undefined;
  /** sha256 of the bytes, so tests can check an upload arrived intact without holding copies. */
  sha256: string;
  bytes: Buffer;
}

export interface StoredMessage {
  id: string;
  folder: FolderName;
  mime: Buffer;
  /** true when `mime` came from the client verbatim (MIME create/send); false when the stand-in composed it. */
  mimeFromClient: boolean;
  subject: string;
  from: Recipient | undefined;
  toRecipients: Recipient[];
  ccRecipients: Recipient[];
  replyTo: Recipient[];
  internetMessageId: string;
  inReplyTo: string | undefined;
  references: string[];
  receivedDateTime: string;
  sentDateTime: string;
  createdDateTime: string;
  lastModifiedDateTime: string;
  conversationId: string;
  conversationIndex: string;
  changeKey: string;
  isDraft: boolean;
  isRead: boolean;
  bodyContentType: 'text' | 'html';
  bodyContent: string;
  attachments: StoredAttachment[];
  /** Attachments were added through the API after the MIME was stored: recompose before sending. */
  mimeStale: boolean;
  /** Who actually sent it when that is not `from` (Exchange Send on Behalf); Graph's `sender`. */
  sender?: Recipient | undefined;
}

export interface DeltaChange {
  seq: number;
  messageId: string;
  kind: 'created' | 'updated' | 'deleted';
  /** Delta is per folder, so each change remembers which folder it happened in. */
  folder: FolderName;
}

export interface SentRecord {
  messageId: string | undefined;
  via: 'sendMail' | 'draftSend' | 'reply';
  conversationId: string;
  internetMessageId: string;
  subject: string;
  inReplyTo: string | undefined;
  mime: Buffer;
  attachments: Array<{ name: string; size: number; sha256: string }>;
  savedToSentItems: boolean;
  at: string;
  /** The From that went out (after Exchange's checks and alias rewriting) and Graph's `sender`. */
  from?: string;
  sender?: string;
}

/** Exchange mailbox permissions that let another mailbox put this one in From (sandbox-send-as.ts). */
export type SendRight = 'SendAs' | 'SendOnBehalf';

export type RefreshFailureMode = 'invalid_grant' | 'interaction_required';

export interface SandboxUser {
  id: string;
  tenantId: string;
  email: string;
  displayName: string;
  messages: Map<string, StoredMessage>;
  changes: DeltaChange[];
  seq: number;
  /** Bumped to invalidate every delta/skip token issued before (see expireDelta). */
  deltaEpoch: number;
  deltaExpiryMode: 'gone' | 'syncStateNotFound';
  /** How delta links name the inbox: `mailFolders('inbox')` or by the folder's id (Microsoft's doc samples). */
  deltaLinkFolder: 'name' | 'id';
  /** Every delta page served: the `Prefer: odata.maxpagesize` asked for and the items returned (inspection). */
  deltaRequests: Array<{ maxPageSize: string | undefined; returned: number }>;
  grantsRevoked: boolean;
  refreshFailure: RefreshFailureMode | undefined;
  sent: SentRecord[];
  /** A shared mailbox (no sign-in of its own): the ids of the users with full access to it. */
  sharedMembers?: Set<string>;
  /** Secondary SMTP addresses (`smtp:` entries of proxyAddresses); the primary is `email`. */
  aliases: string[];
  /** Exchange Send As / Send on Behalf granted on this mailbox, by the trustee's user id. */
  sendRights: Map<string, SendRight>;
}

export function graphId(prefix = 'AAMkAD'): string {
  // Real ids are long URL-safe base64 strings ending in '='; keep the '=' so callers must encode paths.
  return `${prefix}${randomBytes(33).toString('base64url')}=`;
}

function changeKey(): string {
  return randomBytes(18).toString('base64');
}

function newConversationIndex(at: Date): string {
  // conversationIndex: 22-byte header (reserved byte, FILETIME high bytes, GUID) for a new thread.
  const buf = Buffer.alloc(22);
  buf[0] = 1;
  const filetime = (BigInt(at.getTime()) + 11644473600000n) * 10000n;
  buf.writeBigUInt64BE(filetime, 0);
  buf[0] = 1;
  randomBytes(16).copy(buf, 6);
  return buf.toString('base64');
}

function childConversationIndex(parent: string): string {
  // Each reply appends a 5-byte child block to the parent's index.
  return Buffer.concat([Buffer.from(parent, 'base64'), randomBytes(5)]).toString('base64');
}

function toRecipients(addr: AddressObject | AddressObject[] | undefined): Recipient[] {
  const list = addr === undefined ? [] : Array.isArray(addr) ? addr : [addr];
  return list.flatMap((a) => a.value).filter((v) => v.address).map((v) => ({ emailAddress: { address: v.address ?? '', name: v.name || v.address || '' } }));
}

export interface ParsedMime {
  subject: string;
  from: Recipient | undefined;
  to: Recipient[];
  cc: Recipient[];
  replyTo: Recipient[];
  internetMessageId: string | undefined;
  inReplyTo: string | undefined;
  references: string[];
  date: Date | undefined;
  text: string;
  html: string | undefined;
  attachments: StoredAttachment[];
}

export async function parseMime(raw: Buffer): Promise<ParsedMime> {
  const parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
  const refs = parsed.references === undefined ? [] : Array.isArray(parsed.references) ? parsed.references : [parsed.references];
  return {
    subject: parsed.subject ?? '',
    from: toRecipients(parsed.from)[0],
    to: toRecipients(parsed.to),
    cc: toRecipients(parsed.cc),
    replyTo: toRecipients(parsed.replyTo),
    internetMessageId: parsed.messageId,
    inReplyTo: parsed.inReplyTo,
    references: refs.flatMap((r) => r.split(/\s+/)).filter(Boolean),
    date: parsed.date,
    text: parsed.text ?? '',
    html: typeof parsed.html === 'string' ? parsed.html : undefined,
    attachments: parsed.attachments.map((a) => ({
      id: graphId('AAMkAGAtt'),
      name: a.filename ?? 'attachment',
      contentType: a.contentType,
      size: a.size,
      isInline: a.contentDisposition === 'inline',
      contentId: a.contentId,
      sha256: createHash('sha256').update(a.content).digest('hex'),
      bytes: a.content,
    })),
  };
}

export interface NewMessageInput {
  folder: FolderName;
  mime: Buffer;
  mimeFromClient: boolean;
  parsed: ParsedMime;
  receivedAt: Date;
  isDraft: boolean;
  /** Force the conversation (createReply drafts share the original's conversationId). */
  conversationOf?: StoredMessage;
}

/** In-memory mailboxes. Everything the Graph and identity handlers read or change lives here. */
export class SandboxMailboxStore {
  private readonly usersByEmail = new Map<string, SandboxUser>();
  private readonly usersById = new Map<string, SandboxUser>();
  /**
   * Exchange Online's organization setting (Set-OrganizationConfig -SendFromAliasEnabled). Off —
   * Exchange's default — rewrites an alias in From to the mailbox's primary address.
   */
  sendFromAliasEnabled = false;

  constructor(readonly tenantId: string) {}

  createUser(email: string, displayName?: string): SandboxUser {
    const key = email.toLowerCase();
    const existing = this.usersByEmail.get(key);
    if (existing) return existing;
    const user: SandboxUser = {
      id: randomUUID(),
      tenantId: this.tenantId,
      email,
      displayName: displayName ?? email.split('@')[0] ?? email,
      messages: new Map(),
      changes: [],
      seq: 0,
      deltaEpoch: 0,
      deltaExpiryMode: 'gone',
      deltaLinkFolder: 'name',
      deltaRequests: [],
      grantsRevoked: false,
      refreshFailure: undefined,
      sent: [],
      aliases: [],
      sendRights: new Map(),
    };
    this.usersByEmail.set(key, user);
    this.usersById.set(user.id, user);
    return user;
  }

  /** A shared mailbox: no licence, no password; members reach it under `/users/{address}/…`. */
  createSharedMailbox(email: string, displayName?: string): SandboxUser {
    const mailbox = this.createUser(email, displayName);
    mailbox.sharedMembers ??= new Set();
    return mailbox;
  }

  /**
   * Grants (`member: true`) or removes a user's full access to a shared mailbox. Like adding a
   * member in the Microsoft 365 admin center, membership brings Send As too (unless another right
   * was set with setSendRight); removing the member removes both.
   */
  setSharedMember(sharedEmail: string, memberEmail: string, member: boolean): void {
    const mailbox = this.requireUser(sharedEmail);
    if (!mailbox.sharedMembers) throw new Error(`sandbox: ${sharedEmail} is not a shared mailbox`);
    const user = this.createUser(memberEmail);
    if (member) {
      mailbox.sharedMembers.add(user.id);
      if (!mailbox.sendRights.has(user.id)) mailbox.sendRights.set(user.id, 'SendAs');
    } else {
      mailbox.sharedMembers.delete(user.id);
      mailbox.sendRights.delete(user.id);
    }
  }

  /** Exchange's Add-RecipientPermission (SendAs) / Set-Mailbox -GrantSendOnBehalfTo; `null` removes the right. */
  setSendRight(mailboxEmail: string, trusteeEmail: string, right: SendRight | null): void {
    const mailbox = this.requireUser(mailboxEmail);
    const trustee = this.createUser(trusteeEmail);
    if (right) mailbox.sendRights.set(trustee.id, right);
    else mailbox.sendRights.delete(trustee.id);
  }

  /** The mailbox's secondary SMTP addresses (proxyAddresses `smtp:` entries). */
  setAliases(email: string, aliases: string[]): void {
    this.requireUser(email).aliases = [...aliases];
  }

  /** The recipient an SMTP address resolves to in this tenant: a primary address or an alias. */
  findByAnyAddress(address: string): SandboxUser | undefined {
    const key = address.toLowerCase();
    return this.usersByEmail.get(key) ?? [...this.usersById.values()].find((u) => u.aliases.some((a) => a.toLowerCase() === key));
  }

  findByEmail(email: string): SandboxUser | undefined {
    return this.usersByEmail.get(email.toLowerCase());
  }

  findById(id: string): SandboxUser | undefined {
    return this.usersById.get(id);
  }

  requireUser(email: string): SandboxUser {
    const u = this.findByEmail(email);
    if (!u) throw new Error(`sandbox: no user ${email}`);
    return u;
  }

  users(): SandboxUser[] {
    return [...this.usersById.values()];
  }

  /** Threads like Exchange does for MIME: In-Reply-To / References naming a stored message join its conversation. */
  findConversationParent(user: SandboxUser, parsed: ParsedMime): StoredMessage | undefined {
    const ids = [parsed.inReplyTo, ...[...parsed.references].reverse()].filter((x): x is string => !!x);
    for (const wanted of ids) {
      for (const m of user.messages.values()) if (m.internetMessageId === wanted) return m;
    }
    return undefined;
  }

  addMessage(user: SandboxUser, input: NewMessageInput): StoredMessage {
    const parent = input.conversationOf ?? this.findConversationParent(user, input.parsed);
    const now = input.receivedAt.toISOString().replace(/\.\d{3}Z$/, 'Z');
    const p = input.parsed;
    const msg: StoredMessage = {
      id: graphId(),
      folder: input.folder,
      mime: input.mime,
      mimeFromClient: input.mimeFromClient,
      subject: p.subject,
      from: p.from,
      toRecipients: p.to,
      ccRecipients: p.cc,
      replyTo: p.replyTo,
      internetMessageId: p.internetMessageId ?? `<${randomBytes(12).toString('hex')}@sandbox.outlook.local>`,
      inReplyTo: p.inReplyTo,
      references: p.references,
      receivedDateTime: now,
      sentDateTime: (p.date ?? input.receivedAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      createdDateTime: now,
      lastModifiedDateTime: now,
      conversationId: parent?.conversationId ?? graphId('AAQkAD'),
      conversationIndex: parent ? childConversationIndex(parent.conversationIndex) : newConversationIndex(input.receivedAt),
      changeKey: changeKey(),
      isDraft: input.isDraft,
      isRead: input.folder !== 'inbox',
      bodyContentType: p.html ? 'html' : 'text',
      bodyContent: p.html ?? p.text,
      attachments: p.attachments,
      mimeStale: false,
    };
    user.messages.set(msg.id, msg);
    this.recordChange(user, msg.id, 'created', msg.folder);
    return msg;
  }

  touch(user: SandboxUser, msg: StoredMessage): void {
    msg.changeKey = changeKey();
    msg.lastModifiedDateTime = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    this.recordChange(user, msg.id, 'updated', msg.folder);
  }

  moveTo(user: SandboxUser, msg: StoredMessage, folder: FolderName): void {
    if (msg.folder === folder) return;
    // A move is a delete in the source folder and a create in the destination (per-folder delta).
    // Exchange item ids change when an item moves folder (unless ImmutableId is requested).
    this.recordChange(user, msg.id, 'deleted', msg.folder);
    user.messages.delete(msg.id);
    msg.id = graphId();
    msg.folder = folder;
    user.messages.set(msg.id, msg);
    this.recordChange(user, msg.id, 'created', folder);
  }

  deleteMessage(user: SandboxUser, id: string): boolean {
    const msg = user.messages.get(id);
    if (!msg) return false;
    this.recordChange(user, id, 'deleted', msg.folder);
    user.messages.delete(id);
    return true;
  }

  private recordChange(user: SandboxUser, messageId: string, kind: DeltaChange['kind'], folder: FolderName): void {
    user.seq += 1;
    user.changes.push({ seq: user.seq, messageId, kind, folder });
  }
}

export function etagOf(m: StoredMessage): string {
  return `W/"${m.changeKey}"`;
}

export function bodyPreview(m: StoredMessage): string {
  const text = m.bodyContentType === 'html' ? m.bodyContent.replace(/<[^>]*>/g, ' ') : m.bodyContent;
  return text.replace(/\s+/g, ' ').trim().slice(0, 255);
}

/** A folder's Graph id (URL-safe base64 ending in '=' like Exchange's). */
export function folderIdOf(user: SandboxUser, folder: FolderName | 'msgfolderroot'): string {
  return `AQMkAD${Buffer.from(`${user.id}:${folder}`).toString('base64url')}=`;
}

/** Full message resource as Graph returns it for GET /me/messages/{id}. */
export function toGraphMessage(m: StoredMessage, user: SandboxUser, webBase: string): Message & Record<string, unknown> {
  const folderId = folderIdOf(user, m.folder);
  return {
    '@odata.etag': etagOf(m),
    id: m.id,
    createdDateTime: m.createdDateTime,
    lastModifiedDateTime: m.lastModifiedDateTime,
    changeKey: m.changeKey,
    categories: [],
    receivedDateTime: m.receivedDateTime,
    sentDateTime: m.sentDateTime,
    hasAttachments: m.attachments.some((a) => !a.isInline),
    internetMessageId: m.internetMessageId,
    subject: m.subject,
    bodyPreview: bodyPreview(m),
    importance: 'normal',
    parentFolderId: folderId,
    conversationId: m.conversationId,
    conversationIndex: m.conversationIndex,
    isDeliveryReceiptRequested: null,
    isReadReceiptRequested: false,
    isRead: m.isRead,
    isDraft: m.isDraft,
    webLink: `${webBase}/owa/?ItemID=${encodeURIComponent(m.id)}&exvsurl=1&viewmodel=ReadMessageItem`,
    inferenceClassification: 'focused',
    body: { contentType: m.bodyContentType, content: m.bodyContent },
    sender: m.sender ?? m.from ?? null,
    from: m.from ?? null,
    toRecipients: m.toRecipients,
    ccRecipients: m.ccRecipients,
    bccRecipients: [],
    replyTo: m.replyTo,
    flag: { flagStatus: 'notFlagged' },
  };
}
