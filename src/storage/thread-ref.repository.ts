/**
 * `thread_refs` (blind index of a Message-ID → thread key, per mailbox) as seen by ONE ingest
 * transaction of a page of messages: loaded with one query for every id the page can ask about
 * (MessageWriteRepository.pageLookup), then consulted and extended in memory message by message,
 * in page order — so each message sees exactly what it would have seen with one transaction per
 * message (the rows of the messages before it). The new mappings are written with the page
 * (MessageWriteRepository.insertPage), first writer wins (ON CONFLICT DO NOTHING): a delivered
 * thread key never moves. Implements ingest's ThreadIndex port structurally. Ids are hashed with `hash` (the HMAC blind index), so no Message-ID is
 * stored in plaintext.
 */
export class ThreadRefPage {
  readonly #known: Map<string, string>;
  readonly #added: Array<{ refIndex: string; threadKey: string }> = [];
  readonly #hashes = new Map<string, string>();
  readonly #hash: (messageId: string) => string;

  /** `stored`: ref index → thread key, as loaded for the page. */
  constructor(stored: ReadonlyMap<string, string>, hash: (messageId: string) => string) {
    this.#known = new Map(stored);
    this.#hash = hash;
  }

  private hash(id: string): string {
    let h = this.#hashes.get(id);
    if (h === undefined) {
      h = this.#hash(id);
      this.#hashes.set(id, h);
    }
    return h;
  }

  async lookup(messageIds: readonly string[]): Promise<ReadonlyMap<string, string>> {
    const found = new Map<string, string>();
    for (const id of messageIds) {
      const key = this.#known.get(this.hash(id));
      if (key !== undefined) found.set(id, key);
    }
    return found;
  }

  async record(messageIds: readonly string[], threadKey: string): Promise<void> {
    for (const id of messageIds) {
      const refIndex = this.hash(id);
      if (this.#known.has(refIndex)) continue;
      this.#known.set(refIndex, threadKey);
      this.#added.push({ refIndex, threadKey });
    }
  }

  /** Mappings this page introduced, in order (each ref index once). */
  added(): ReadonlyArray<{ refIndex: string; threadKey: string }> {
    return this.#added;
  }
}
