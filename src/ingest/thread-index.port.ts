/**
 * Port: Message-ID → thread key, scoped to ONE mailbox (the storage adapter binds the mailbox id;
 * threads never cross mailboxes or tenants).
 *
 * Sync runs one job per mailbox at a time (ARCHITECTURE.md), so lookup-then-record needs no lock.
 * The storage adapter should write `record` in the same transaction as the message row, so a
 * rolled-back ingest leaves no index entries behind.
 */
export interface ThreadIndex {
  /** Returns the known thread key for each id that has one; unknown ids are absent from the map. */
  lookup(messageIds: readonly string[]): Promise<ReadonlyMap<string, string>>;
  /**
   * Maps each id to `threadKey` unless the id already has a key: first writer wins, so a thread
   * key that was delivered to the ticket service never changes under it.
   */
  record(messageIds: readonly string[], threadKey: string): Promise<void>;
}
