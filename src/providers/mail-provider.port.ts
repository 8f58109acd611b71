import type { Readable } from 'node:stream';

export type ProviderName = 'google' | 'microsoft';

/** Returns a currently valid access token for one mailbox (the token vault implements it). */
export type AccessTokenSource = () => Promise<string>;

/**
 * Opaque-to-callers sync position. Versioned so a stored cursor from an older release is
 * recognised (and rejected or migrated) instead of misread.
 *  - google: the last *stored* historyId.
 *  - microsoft: a Graph `@odata.deltaLink` or `@odata.nextLink` (validated against an allowlist),
 *    and the inbox's folder id once a link named the folder by id (so it is resolved once).
 */
export type SyncCursor =
  | { v: 1; provider: 'google'; historyId: string }
  | { v: 1; provider: 'microsoft'; link: string; inboxFolderId?: string };

export interface ChangePage {
  /** Provider ids of messages added to the inbox since the cursor, oldest first, deduplicated. */
  addedMessageIds: string[];
  /** Cursor to store once every message in `addedMessageIds` is committed. */
  nextCursor: SyncCursor;
  /** True when another page should be fetched right away with `nextCursor`. */
  hasMore: boolean;
}

export interface WindowPage {
  /** Provider ids of inbox messages received at or after `since`, newest first as the provider lists them. */
  messageIds: string[];
  nextPageToken: string | undefined;
}

export interface RawMessage {
  providerMessageId: string;
  /** Gmail threadId / Graph conversationId. */
  providerThreadId: string | undefined;
  /** RFC 5322 bytes. A stream so a 100 MB message is never held several times. */
  raw: Readable;
  /** Provider's size estimate in bytes, when known (used for the oversize cap before reading). */
  sizeEstimate: number | undefined;
  receivedAt: Date | undefined;
  labelIds: string[];
}

export interface WatchInfo {
  /** Gmail: the watch expiration; Graph: the subscription expirationDateTime. */
  expiresAt: Date;
  /** Graph subscription id; undefined for Gmail. */
  subscriptionId: string | undefined;
  /** Gmail: historyId returned by watch. */
  historyId: string | undefined;
}

export interface SendRequest {
  /** Complete RFC 5322 message (composed by the caller with MailComposer). */
  mime: Buffer;
  /** Internet Message-ID of `mime`, used to find an already-sent copy. */
  internetMessageId: string;
  /** Gmail threadId to thread into. */
  providerThreadId?: string;
  /** Graph: the provider id of the message being replied to (createReply + send). */
  replyToProviderMessageId?: string;
}

/**
 * An address the mailbox may send as (issue 15 item 4): Gmail's `users.settings.sendAs` entries
 * (the primary address and custom "from" aliases). `verified` is true for the primary address and
 * for aliases whose `verificationStatus` is `accepted`; a `pending` alias is listed unverified.
 */
export interface SendAsAddress {
  address: string;
  displayName: string | undefined;
  isPrimary: boolean;
  verified: boolean;
}

export interface SendResult {
  providerMessageId: string | undefined;
  providerThreadId: string | undefined;
  /**
   * The From address of the copy the provider stored, when the adapter reads it back (Graph: the
   * Sent Items copy). Another address than the MIME's means the provider rewrote it (Exchange
   * turns an alias into the primary address unless SendFromAliasEnabled).
   */
  sentFrom?: string;
}

/**
 * The narrow port the sync engine, connect flow and sender use. One instance is bound to one
 * mailbox (its access token source). Every failure is a ProviderError.
 */
export interface MailProvider {
  readonly name: ProviderName;
  /** The mailbox's primary address (Gmail getProfile / Graph /me). */
  getAddress(): Promise<string>;
  /** A cursor representing "now": changes after it are reported by listChanges. */
  currentCursor(): Promise<SyncCursor>;
  /** One page of changes after `cursor`. Throws cursor_expired when the provider no longer knows it. */
  listChanges(cursor: SyncCursor): Promise<ChangePage>;
  /** Inbox messages received since `since` (backfill and window resync). */
  listWindow(since: Date, pageToken?: string): Promise<WindowPage>;
  fetchRaw(providerMessageId: string): Promise<RawMessage>;
  /** Find an already-sent message by its Message-ID (idempotent re-send check). */
  findByInternetMessageId(internetMessageId: string): Promise<string | undefined>;
  send(req: SendRequest): Promise<SendResult>;
  /**
   * The addresses this mailbox may put in From, when the provider can list them (Gmail
   * `users.settings.sendAs.list`). Absent: only the mailbox's own address can be used.
   */
  listSendAs?(): Promise<SendAsAddress[]>;
}
