// Compares two V8 heap snapshots (.heapsnapshot) of the same process: retained self size and
// object count per constructor/type, largest growth first, divided by the number of mailboxes
// added between them.
//   node bench/idle/heap-diff.mjs <before.heapsnapshot> <after.heapsnapshot> [mailboxes=1] [top=25]
import { readFileSync } from 'node:fs';

const [before, after, mailboxes = '1', top = '25'] = process.argv.slice(2);
if (!before || !after) {
  console.error('usage: node bench/idle/heap-diff.mjs <before.heapsnapshot> <after.heapsnapshot> [mailboxes] [top]');
  process.exit(1);
}

/** Self size and count per "type:name" (strings grouped as one bucket per type). */
function summarize(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const meta = snap.snapshot.meta;
  const fields = meta.node_fields;
  const types = meta.node_types[0];
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const width = fields.length;
  const out = new Map();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]];
    const size = snap.nodes[i + iSize];
    total += size;
    const name = type === 'object' || type === 'closure' || type === 'native' ? snap.strings[snap.nodes[i + iName]] : '';
    const key = `${type}${name ? `:${name.slice(0, 60)}` : ''}`;
    const e = out.get(key) ?? { size: 0, count: 0 };
    e.size += size;
    e.count += 1;
    out.set(key, e);
  }
  return { out, total };
}

const a = summarize(before);
const b = summarize(after);
const n = Number(mailboxes);
const rows = [];
for (const [key, e] of b.out) {
  const p = a.out.get(key) ?? { size: 0, count: 0 };
  rows.push({ key, dSize: e.size - p.size, dCount: e.count - p.count });
}
rows.sort((x, y) => y.dSize - x.dSize);
console.log(`heap self size: ${(a.total / 1048576).toFixed(1)} MiB → ${(b.total / 1048576).toFixed(1)} MiB (${((b.total - a.total) / 1024 / n).toFixed(2)} KB per mailbox over ${n})`);
for (const r of rows.slice(0, Number(top))) {
  console.log(`${(r.dSize / 1024).toFixed(0).padStart(8)} KB ${(r.dSize / n).toFixed(0).padStart(6)} B/mailbox ${String(r.dCount).padStart(8)} objects (${(r.dCount / n).toFixed(2)}/mailbox)  ${r.key}`);
}
