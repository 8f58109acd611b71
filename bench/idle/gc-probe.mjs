// Preloaded into the service by the idle bench (`node --expose-gc --import <this file> … serve`):
// on SIGUSR2 it runs a full garbage collection and writes one line to stderr,
//   GCPROBE {"rssKb", "heapUsedKb", "externalKb", "arrayBuffersKb", "snapshot"?}
// the process's memory with only live objects left on the heap. With BENCH_HEAP_SNAPSHOTS=<dir>
// it also writes a V8 heap snapshot there (compare two with bench/idle/heap-diff.mjs).
// Bench-only: nothing in src/ knows about it.
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';

let n = 0;
process.on('SIGUSR2', () => {
  globalThis.gc?.();
  globalThis.gc?.(); // a second pass frees what the first one's finalizers released
  const m = process.memoryUsage();
  const out = { rssKb: Math.round(m.rss / 1024), heapUsedKb: Math.round(m.heapUsed / 1024), externalKb: Math.round(m.external / 1024), arrayBuffersKb: Math.round(m.arrayBuffers / 1024) };
  const dir = process.env.BENCH_HEAP_SNAPSHOTS;
  if (dir) out.snapshot = writeHeapSnapshot(join(dir, `idle-${process.pid}-${++n}.heapsnapshot`));
  process.stderr.write(`GCPROBE ${JSON.stringify(out)}\n`);
});
