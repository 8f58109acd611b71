import type { ThreadIndex } from './thread-index.port.js';

/** ThreadIndex for tests, the corpus suite and the bench. One instance = one mailbox. */
export class InMemoryThreadIndex implements ThreadIndex {
  private readonly keys = new Map<string, string>();

  async lookup(messageIds: readonly string[]): Promise<ReadonlyMap<string, string>> {
    const found = new Map<string, string>();
    for (const id of messageIds) {
      const key = this.keys.get(id);
      if (key !== undefined) found.set(id, key);
    }
    return found;
  }

  async record(messageIds: readonly string[], threadKey: string): Promise<void> {
    for (const id of messageIds) if (!this.keys.has(id)) this.keys.set(id, threadKey);
  }

  get size(): number {
    return this.keys.size;
  }
}
