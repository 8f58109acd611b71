import { describe, expect, it } from 'vitest';
import { gmailLimits } from '../providers/google/gmail-limits.js';
import { GRAPH_MAX_BODY_BYTES, graphLimits } from '../providers/microsoft/graph-limits.js';
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

  it('refuses a Graph attachment over 150 MB or an oversized body, but not a large total', () => {
    expect(rejection(() => checkRequestSize(graphLimits, { textBytes: 1, htmlBytes: 0, attachments: [{ size: 150 * MB + 1 }] }))?.message).toMatch(/attachments\[0\].*150 MB/);
    expect(rejection(() => checkRequestSize(graphLimits, { textBytes: 1, htmlBytes: 0, attachments: [{ size: 100 * MB }, { size: 100 * MB }] }))).toBeUndefined();
    expect(rejection(() => checkRequestSize(graphLimits, { textBytes: GRAPH_MAX_BODY_BYTES, htmlBytes: 1, attachments: [] }))?.code).toBe('message_too_large');
    // Graph has no whole-message check here: drafts take attachments one by one.
    expect(rejection(() => checkComposedSize(graphLimits, 200 * MB))).toBeUndefined();
  });
});
