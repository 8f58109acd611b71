import { describe, expect, it } from 'vitest';
import { gmailLimits } from '../providers/google/gmail-limits.js';
import { graphLimits } from '../providers/microsoft/graph-limits.js';
import { GRAPH_MAX_MIME_BYTES } from '../providers/microsoft/graph.adapter.js';
import { checkComposedSize, checkRequestSize } from './send-limits.js';
import { SendRejectedError } from './send-rejection.js';

const MB = 1024 * 1024;

function rejection(fn: () => void): SendRejectedError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof SendRejectedError) return err;
    throw err;
  }
}

describe('send size limits', () => {
  it('refuses a Gmail message whose base64 attachments exceed 35 MB, and accepts one that fits', () => {
    // 26 MB of attachment is ~35.7 MB once base64-encoded: over Gmail's limit.
    const over = rejection(() => checkRequestSize(gmailLimits, { textBytes: 10, htmlBytes: 0, attachments: [{ size: 26 * MB }] }));
    expect(over).toMatchObject({ code: 'message_too_large', status: 413 });
    expect(over?.message).toMatch(/35 MB/);
    expect(rejection(() => checkRequestSize(gmailLimits, { textBytes: 10, htmlBytes: 0, attachments: [{ size: 20 * MB }, { size: 4 * MB }] }))).toBeUndefined();
    expect(rejection(() => checkComposedSize(gmailLimits, 36_700_161))?.code).toBe('message_too_large');
    expect(rejection(() => checkComposedSize(gmailLimits, 36_700_160))).toBeUndefined();
  });

  it('refuses a Microsoft message whose base64 request would exceed Graph’s 4 MB limit, and accepts one that fits', () => {
    // 2.5 MB of attachment is ~3.4 MB of MIME, ~4.6 MB once base64-encoded for sendMail/reply.
    const over = rejection(() => checkRequestSize(graphLimits, { textBytes: 10, htmlBytes: 0, attachments: [{ size: 2.5 * MB }] }));
    expect(over).toMatchObject({ code: 'message_too_large', status: 413, details: { limit: 'graph_request_4mb', maxMessageBytes: GRAPH_MAX_MIME_BYTES } });
    expect(over?.message).toMatch(/4 MB/);
    expect(rejection(() => checkRequestSize(graphLimits, { textBytes: 10, htmlBytes: 0, attachments: [{ size: 150 * MB }] }))?.code).toBe('message_too_large');
    expect(rejection(() => checkRequestSize(graphLimits, { textBytes: 2000, htmlBytes: 4000, attachments: [{ size: 1 * MB }, { size: 1 * MB }] }))).toBeUndefined();
    expect(rejection(() => checkComposedSize(graphLimits, GRAPH_MAX_MIME_BYTES + 1))?.code).toBe('message_too_large');
    expect(rejection(() => checkComposedSize(graphLimits, GRAPH_MAX_MIME_BYTES))).toBeUndefined();
    // The limit is the request: the message's base64 must stay under 4 MB.
    expect(Math.ceil(GRAPH_MAX_MIME_BYTES / 3) * 4).toBeLessThanOrEqual(4 * MB);
  });
});
