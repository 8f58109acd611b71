import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { classify } from '../../src/ingest/classifier.js';
import { InMemoryAttachmentSink } from '../../src/ingest/in-memory-attachment-sink.js';
import { parseMime } from '../../src/ingest/mime-parser.js';
import { corpusMissingReason, missing } from '../helpers/requirements.js';
import { corpusDir } from '../helpers/shared-dir.js';

const ROOT = join(corpusDir(), 'sisimai-set-of-emails');
const EXPECTED = join(ROOT, 'EXPECTED.go-sisimai-publiclist.json');

// go-sisimai's expectations: per file, one entry per failed recipient with a `reason`.
const Expected = z.record(z.string(), z.array(z.object({ reason: z.string() }).passthrough()));

type Kind = 'bounce' | 'auto_reply' | 'feedback' | 'none';

/**
 * sisimai's reason → what the connector must say:
 * - `vacation` (the rfc3834-* samples) → auto-reply;
 * - `feedback` (ARF, RFC 5965) → feedback report: neither bounce nor auto-reply, by decision
 *   (see classifier.ts);
 * - every other reason, including `delivered` (a success DSN is still a delivery report the
 *   helpdesk must not treat as a customer message) → bounce.
 */
function expectedKind(reason: string): Kind {
  if (reason === 'vacation') return 'auto_reply';
  if (reason === 'feedback') return 'feedback';
  return 'bounce';
}

describe.skipIf(missing('the sisimai corpus', corpusMissingReason('sisimai-set-of-emails', 'EXPECTED.go-sisimai-publiclist.json')))('classifier agreement with go-sisimai on the sisimai set', () => {
  it('agrees on at least 95% of the listed messages', async () => {
    const expected = Expected.parse(JSON.parse(readFileSync(EXPECTED, 'utf8')));
    let agree = 0;
    let total = 0;
    let missingFiles = 0;
    const disagreements: string[] = [];
    const byKind = new Map<Kind, { agree: number; total: number }>();
    for (const [file, recipients] of Object.entries(expected)) {
      // A few listed files exist only as CR-only or CRLF copies.
      const path = ['bsd', 'dos', 'mac'].map((d) => join(ROOT, 'maildir', d, file)).find(existsSync);
      if (!path || recipients.length === 0) {
        missingFiles++;
        continue;
      }
      const want = expectedKind(recipients[0]!.reason);
      const parsed = await parseMime(createReadStream(path), { attachmentSink: new InMemoryAttachmentSink({ retainContent: false }) });
      const c = classify(parsed);
      const got: Kind = c.isFeedbackReport ? 'feedback' : c.isBounce ? 'bounce' : c.isAutoReply ? 'auto_reply' : 'none';
      const stats = byKind.get(want) ?? { agree: 0, total: 0 };
      stats.total++;
      total++;
      if (got === want) {
        agree++;
        stats.agree++;
      } else {
        disagreements.push(`${file}: expected ${want}, got ${got}`);
      }
      byKind.set(want, stats);
    }
    const rate = agree / total;
    console.log(
      `sisimai agreement: ${agree}/${total} = ${(rate * 100).toFixed(1)}% ` +
        `(${[...byKind].map(([k, s]) => `${k} ${s.agree}/${s.total}`).join(', ')}; ${missingFiles} listed files absent)\n` +
        disagreements.map((d) => `  ${d}`).join('\n'),
    );
    expect(total).toBeGreaterThan(550);
    expect(rate).toBeGreaterThanOrEqual(0.95);
    // Each class must work on its own, not just on average.
    expect(byKind.get('auto_reply')!.agree).toBe(byKind.get('auto_reply')!.total);
    expect(byKind.get('feedback')!.agree / byKind.get('feedback')!.total).toBeGreaterThanOrEqual(0.85);
  });
});
