import { mb, mimeBase64Bytes } from '../mime-size.js';
import type { LimitsPort } from '../ports.js';
import { GRAPH_MAX_MIME_BYTES } from './graph.adapter.js';

const TOO_LARGE = `Microsoft 365 mailboxes send through Microsoft Graph, whose requests are limited to 4 MB: the message, base64-encoded once more for the request, must stay under that (at most ${mb(GRAPH_MAX_MIME_BYTES)} MB of message, about 2.2 MB of attachments). Larger messages would need drafts and upload sessions (Mail.ReadWrite), which the connector does not ask for`;

/**
 * Graph: sendMail and reply take the whole RFC 5322 message as base64 in one request, and "write
 * requests in the Microsoft Graph API have a size limit of 4 MB" (provider-facts §4.3). The
 * 150 MB attachments Graph allows need a draft (POST messages / createReply) and upload sessions,
 * which need Mail.ReadWrite; the connector holds Mail.Read + Mail.Send only (scope-policy.ts), so
 * the limit for every Microsoft mailbox is the 4 MB request.
 */
export const graphLimits: LimitsPort & { readonly details: Readonly<Record<string, unknown>> } = {
  /** Public `details` of the 413 (send-limits.ts): which limit, and the largest message it allows. */
  details: Object.freeze({ limit: 'graph_request_4mb', maxMessageBytes: GRAPH_MAX_MIME_BYTES }),
  requestTooLarge(input) {
    // Attachments and bodies are base64 inside the MIME (+37 %), plus headers and part boundaries.
    const estimate = mimeBase64Bytes(input.textBytes) + mimeBase64Bytes(input.htmlBytes) + input.attachments.reduce((n, a) => n + mimeBase64Bytes(a.size) + 512, 0);
    return estimate > GRAPH_MAX_MIME_BYTES ? `the message would be about ${mb(estimate)} MB; ${TOO_LARGE}` : undefined;
  },
  composedTooLarge(mimeBytes) {
    return mimeBytes > GRAPH_MAX_MIME_BYTES ? `the composed message is ${mb(mimeBytes)} MB; ${TOO_LARGE}` : undefined;
  },
};
