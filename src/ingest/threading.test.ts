import { describe, expect, it } from 'vitest';
import { InMemoryThreadIndex } from './in-memory-thread-index.js';
import { newThreadKey, resolveThreadKey, threadCandidates } from './threading.js';

const msg = (messageId: string, inReplyTo: string | null = null, references: string[] = []) => ({
  messageId,
  inReplyTo,
  references,
});

describe('resolveThreadKey', () => {
  it('puts a reply in its parent thread', async () => {
    const index = new InMemoryThreadIndex();
    const root = await resolveThreadKey(msg('a@x'), index);
    const reply = await resolveThreadKey(msg('b@x', 'a@x', ['a@x']), index);
    const replyToReply = await resolveThreadKey(msg('c@x', 'b@x', ['a@x', 'b@x']), index);
    expect(reply).toBe(root);
    expect(replyToReply).toBe(root);
  });

  it('joins a late-arriving parent (ghost root) to the thread its replies started', async () => {
    const index = new InMemoryThreadIndex();
    const grandChild = await resolveThreadKey(msg('c@x', 'b@x', ['a@x', 'b@x']), index);
    const child = await resolveThreadKey(msg('b@x', 'a@x', ['a@x']), index);
    const root = await resolveThreadKey(msg('a@x'), index);
    expect(child).toBe(grandChild);
    expect(root).toBe(grandChild);
  });

  it('keeps two replies to the same unseen root together even without a direct link', async () => {
    const index = new InMemoryThreadIndex();
    const one = await resolveThreadKey(msg('r1@x', 'root@x', ['root@x']), index);
    const two = await resolveThreadKey(msg('r2@x', 'root@x', ['root@x']), index);
    expect(two).toBe(one);
  });

  it('uses the provider thread when no referenced id is known, and ids win over it later', async () => {
    const index = new InMemoryThreadIndex();
    const first = await resolveThreadKey({ ...msg('a@x'), provider: 'google', providerThreadId: '18c1' }, index);
    expect(first).toBe('gm:18c1');
    // Graph gives a different conversation id, but the reply references a@x: Message-IDs win.
    const reply = await resolveThreadKey(
      { ...msg('b@x', 'a@x', ['a@x']), provider: 'microsoft', providerThreadId: 'AAQk' },
      index,
    );
    expect(reply).toBe('gm:18c1');
    const other = await resolveThreadKey({ ...msg('z@x'), provider: 'microsoft', providerThreadId: 'AAQk' }, index);
    expect(other).toBe('ms:AAQk');
  });

  it('prefers In-Reply-To over a conflicting References header', async () => {
    const index = new InMemoryThreadIndex();
    const threadA = await resolveThreadKey(msg('a@x'), index);
    const threadB = await resolveThreadKey(msg('b@x'), index);
    expect(threadA).not.toBe(threadB);
    const key = await resolveThreadKey(msg('c@x', 'b@x', ['a@x']), index);
    expect(key).toBe(threadB);
    // The conflicting reference keeps its own thread: keys already delivered never move.
    expect((await index.lookup(['a@x'])).get('a@x')).toBe(threadA);
  });

  it('gives the nearest known ancestor precedence among References', async () => {
    const index = new InMemoryThreadIndex();
    const oldThread = await resolveThreadKey(msg('old@x'), index);
    const newThread = await resolveThreadKey(msg('near@x'), index);
    const key = await resolveThreadKey(msg('c@x', null, ['old@x', 'near@x']), index);
    expect(newThread).not.toBe(oldThread);
    expect(key).toBe(newThread);
  });

  it('is idempotent: re-ingesting a message (or a duplicate Message-ID) gives the same key', async () => {
    const index = new InMemoryThreadIndex();
    const first = await resolveThreadKey(msg('dup@x', null, []), index);
    const again = await resolveThreadKey(msg('dup@x', 'unrelated@x', ['unrelated@x']), index);
    expect(again).toBe(first);
    // Without any index the derived key is still the same for the same message.
    expect(newThreadKey(msg('solo@x'))).toBe(newThreadKey(msg('solo@x')));
  });

  it('survives References loops and self references', async () => {
    const index = new InMemoryThreadIndex();
    const a = await resolveThreadKey(msg('a@x', 'b@x', ['b@x', 'a@x', 'b@x']), index);
    const b = await resolveThreadKey(msg('b@x', 'a@x', ['a@x', 'b@x', 'a@x']), index);
    expect(b).toBe(a);
    expect(threadCandidates(msg('a@x', 'b@x', ['b@x', 'a@x', 'b@x']))).toEqual(['a@x', 'b@x']);
  });
});
