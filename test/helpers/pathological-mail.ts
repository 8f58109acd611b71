// Pathological messages — the "fuzz corpus" that must never stall the event loop: generated
// worst cases (megabyte header blocks of addresses, ~1,000 MIME parts, deep nesting) and the
// shared corpus's known parser-denial-of-service files. Used by
// test/integration/ingest-event-loop.test.ts and `npm run bench -- latency --fuzz`.
// No vitest import: benchmarks use it too.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { corpusDir } from './shared-dir.js';

const head = (subject: string, id: string): string[] => ['From: Sender <sender@example.com>', `Subject: ${subject}`, `Message-ID: <${id}@example.com>`, `Date: ${new Date().toUTCString()}`];

/** About `bytes` of header: one address per To: line (mailparser parses every one). */
export function hugeHeader(bytes: number, n: number): Buffer {
  const lines = head(`huge header ${n}`, `huge-header-${n}`);
  for (let i = 0, size = 0; size < bytes; i++) {
    const line = `To: "User ${i}" <user${i}@example.com>, "Other ${i}" <o${i}@example.com>`;
    lines.push(line);
    size += line.length + 2;
  }
  return Buffer.from([...lines, '', 'body', ''].join('\r\n'));
}

/** `n` sibling parts in one multipart/mixed, text or attachments. */
export function manyParts(n: number, attachments: boolean): Buffer {
  const lines = [...head(`many parts ${n}`, `many-${n}-${attachments}`), 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="zz"', ''];
  for (let i = 0; i < n; i++) {
    lines.push('--zz', attachments ? `Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="f${i}.bin"` : 'Content-Type: text/plain', '', `part ${i}`);
  }
  return Buffer.from([...lines, '--zz--', ''].join('\r\n'));
}

/** `outer` multipart/alternative parts of `inner` HTML parts each. */
export function nested(outer: number, inner: number): Buffer {
  const lines = [...head('nested', `nested-${outer}x${inner}`), 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="o"', ''];
  for (let i = 0; i < outer; i++) {
    lines.push('--o', `Content-Type: multipart/alternative; boundary="i${i}"`, '');
    for (let j = 0; j < inner; j++) lines.push(`--i${i}`, 'Content-Type: text/html', '', `<p>part ${i}.${j}</p>`);
    lines.push(`--i${i}--`);
  }
  return Buffer.from([...lines, '--o--', ''].join('\r\n'));
}

/**
 * About 1 MiB of HTML: 4,000 table rows, each with a remote image (what blocking remote images
 * rewrites). A large content for the content worker (webhook bodies, the read API).
 */
export function largeHtml(): Buffer {
  const rows = Array.from({ length: 4000 }, (_, i) => `<tr><td>line ${i}</td><td><img src="https://tracker.example/p${i}.png" alt="x"></td></tr>`).join('\n');
  const html = `<html><body><p>Hello</p><table>${rows}</table></body></html>`;
  return Buffer.from(
    ['From: Ada <ada@customer.example>', 'To: support@helpdesk.example', 'Subject: big html', 'Message-ID: <big-html@customer.example>', 'MIME-Version: 1.0', 'Content-Type: text/html; charset=utf-8', '', html, ''].join('\r\n'),
  );
}

/** The generated set the ingest-event-loop test backfills: four ~0.95 MiB headers, 999 parts, 990 attachments, 99 × 9 nested. */
export function generatedPathologicalMessages(): Buffer[] {
  return [...[0, 1, 2, 3].map((i) => hugeHeader(0.95 * 1024 * 1024 - i * 1000, i)), manyParts(999, false), manyParts(990, true), nested(99, 9)];
}

/**
 * Parser denial-of-service files of the shared corpus (folder-relative paths): mailparser's own
 * regressions, flanker's 200 KB header, 3 MB endless recursion and 1.8 MB torture message,
 * MimeKit's deep-nesting stack overflow, postal-mime's and mail's torture / stack-depth cases.
 */
export const CORPUS_PATHOLOGICAL = [
  'nodemailer-mailparser/test/fixtures/large_text.eml',
  'nodemailer-mailparser/test/fixtures/outofmemory.eml',
  'nodemailer-mailparser/test/fixtures/htmllargecallstack.eml',
  'mailgun-flanker/tests/fixtures/messages/long-header.eml',
  'mailgun-flanker/tests/fixtures/messages/enclosed-endless.eml',
  'mailgun-flanker/tests/fixtures/messages/torture.eml',
  'mimekit/UnitTests/TestData/messages/stack-overflow.txt',
  'postal-mime/test/fixtures/mimetorture.eml',
  'mikel-mail/spec/fixtures/emails/mime_emails/raw_email_encoded_stack_level_too_deep.eml',
] as const;

/** The corpus files above that exist (all of them where the shared corpus is present). */
export function corpusPathologicalMessages(): Array<{ name: string; raw: Buffer }> {
  return CORPUS_PATHOLOGICAL.map((name) => ({ name, path: join(corpusDir(), name) }))
    .filter((f) => existsSync(f.path))
    .map((f) => ({ name: f.name, raw: readFileSync(f.path) }));
}
