import { GMAIL_MAX_SEND_BYTES } from '../providers/google/gmail.adapter.js';
import type { ProviderName } from '../providers/mail-provider.port.js';
import { ATTACHMENT_MAX_BYTES, GRAPH_WRITE_LIMIT_BYTES } from '../providers/microsoft/graph.adapter.js';
import { SendRejectedError } from './send-rejection.js';

/**
 * Size limits checked BEFORE anything is queued, so the caller gets a 413 now instead of a
 * `message.send_failed` later (provider-facts §1.4, §4.3):
 * - Gmail: messages.send takes at most 35 MB (discovery `maxSize: 36700160`) for the whole RFC
 *   5322 message, through the /upload endpoint; attachments are base64 inside it (+37 %).
 * - Graph: a message above 4 MB is built as a draft with each attachment added separately, under
 *   3 MB by one POST and 3–150 MB by an upload session; one attachment may not exceed 150 MB.
 *   The draft body itself (text + html, without attachments) goes in one 4 MB request as base64
 *   MIME, so the bodies must stay well below it.
 */
export const GRAPH_MAX_BODY_BYTES = Math.floor((GRAPH_WRITE_LIMIT_BYTES * 3) / 4 / 1.4);

export interface SizedAttachment {
  size: number;
}

/** MIME base64 of `bytes` with 76-character lines (what MailComposer writes). */
function mimeBase64Bytes(bytes: number): number {
  const chars = Math.ceil(bytes / 3) * 4;
  return chars + Math.ceil(chars / 76) * 2;
}

/** Refuses what the provider would refuse; cheap, runs before composing or scanning. */
export function checkRequestSize(provider: ProviderName, input: { textBytes: number; htmlBytes: number; attachments: SizedAttachment[] }): void {
  if (provider === 'google') {
    const estimate = mimeBase64Bytes(input.textBytes) + mimeBase64Bytes(input.htmlBytes) + input.attachments.reduce((n, a) => n + mimeBase64Bytes(a.size) + 512, 0);
    if (estimate > GMAIL_MAX_SEND_BYTES) throw tooLarge(`the message would be about ${mb(estimate)} MB; Gmail accepts at most 35 MB including attachments (base64-encoded)`);
    return;
  }
  const big = input.attachments.findIndex((a) => a.size > ATTACHMENT_MAX_BYTES);
  if (big >= 0) throw tooLarge(`attachments[${big}] is ${mb(input.attachments[big]!.size)} MB; Microsoft 365 accepts attachments up to 150 MB`);
  if (input.textBytes + input.htmlBytes > GRAPH_MAX_BODY_BYTES) {
    throw tooLarge(`text and html together are ${mb(input.textBytes + input.htmlBytes)} MB; Microsoft 365 accepts at most ${mb(GRAPH_MAX_BODY_BYTES)} MB of body without attachments`);
  }
}

/** The exact check on the composed bytes (Gmail counts the whole message). */
export function checkComposedSize(provider: ProviderName, mimeBytes: number): void {
  if (provider === 'google' && mimeBytes > GMAIL_MAX_SEND_BYTES) {
    throw tooLarge(`the composed message is ${mb(mimeBytes)} MB; Gmail accepts at most 35 MB including attachments (base64-encoded)`);
  }
}

function mb(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}

function tooLarge(message: string): SendRejectedError {
  return new SendRejectedError('message_too_large', message);
}
