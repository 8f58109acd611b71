import { createReadStream, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InMemoryAttachmentSink } from '../../src/ingest/in-memory-attachment-sink.js';
import { InMemoryThreadIndex } from '../../src/ingest/in-memory-thread-index.js';
import { parseMime, type ParsedMessage } from '../../src/ingest/mime-parser.js';
import { resolveThreadKey } from '../../src/ingest/threading.js';
import { corpusMissingReason, missing } from '../helpers/requirements.js';
import { corpusDir } from '../helpers/shared-dir.js';

// notmuch's test corpora are GPL-3.0: read in place from the shared folder, never copied.
const ROOT = join(corpusDir(), 'notmuch/test/corpora');
const FOLDERS = ['lkml', 'threading', 'duplicate', 'broken'];

function listFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? listFiles(path) : [path];
    });
}


let parsed: Promise<ParsedMessage[]> | null = null;
function parseAll(): Promise<ParsedMessage[]> {
  parsed ??= parseFiles();
  return parsed;
}

async function parseFiles(): Promise<ParsedMessage[]> {
  const files = FOLDERS.flatMap((f) => listFiles(join(ROOT, f)));
  const sink = new InMemoryAttachmentSink({ retainContent: false });
  return Promise.all(files.map((file) => parseMime(createReadStream(file), { attachmentSink: sink })));
}

/** Share of replies whose parent is in the set that got the parent's thread key. */
async function threadShare(
  messages: ParsedMessage[],
): Promise<{ joined: number; replies: number; split: string[] }> {
  const split: string[] = [];
  const index = new InMemoryThreadIndex();
  const keyById = new Map<string, string>();
  for (const m of messages) keyById.set(m.messageId, await resolveThreadKey(m, index));
  let replies = 0;
  let joined = 0;
  for (const m of messages) {
    const parent = m.inReplyTo ?? m.references.at(-1);
    if (!parent || parent === m.messageId || !keyById.has(parent)) continue;
    replies++;
    if (keyById.get(parent) === keyById.get(m.messageId)) joined++;
    else split.push(`${m.messageId} (parent ${parent})`);
  }
  return { joined, replies, split };
}

describe.skipIf(missing('the notmuch corpus', corpusMissingReason('notmuch/test/corpora')))('threading on the notmuch corpus (lkml, threading, duplicate, broken/loop)', () => {
  it('puts every reply whose parent is present into the parent thread, in any arrival order', async () => {
    const messages = await parseAll();
    expect(messages.length).toBeGreaterThan(200);
    const orders: Record<string, ParsedMessage[]> = {
      'file order': messages,
      'reverse (replies before parents)': [...messages].reverse(),
      'by date': [...messages].sort((a, b) => a.date.getTime() - b.date.getTime()),
    };
    for (const [name, ordered] of Object.entries(orders)) {
      const { joined, replies, split } = await threadShare(ordered);
      const share = joined / replies;
      console.log(`notmuch threading (${name}): ${joined}/${replies} replies joined their parent's thread = ${(share * 100).toFixed(1)}%${split.length ? `; split: ${split.join(', ')}` : ''}`);
      expect(replies).toBeGreaterThan(150);
      expect(share).toBeGreaterThanOrEqual(0.99);
    }
  });

  it('groups the lkml corpus into far fewer threads than messages', async () => {
    const messages = (await parseAll()).filter((m) => m.messageId);
    const index = new InMemoryThreadIndex();
    const keys = new Set<string>();
    for (const m of messages) keys.add(await resolveThreadKey(m, index));
    console.log(`notmuch: ${messages.length} messages in ${keys.size} threads`);
    expect(keys.size).toBeLessThan(messages.length / 3);
  });
});
