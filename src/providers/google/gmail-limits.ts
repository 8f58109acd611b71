import { mb, mimeBase64Bytes } from '../mime-size.js';
import type { LimitsPort } from '../ports.js';
import { GMAIL_MAX_SEND_BYTES } from './gmail.adapter.js';

const TOO_LARGE = 'Gmail accepts at most 35 MB including attachments (base64-encoded)';

/**
 * Gmail: messages.send takes at most 35 MB (discovery `maxSize: 36700160`) for the whole RFC
 * 5322 message, through the /upload endpoint; attachments are base64 inside it (+37 %)
 * (provider-facts §1.4).
 */
export const gmailLimits: LimitsPort = {
  requestTooLarge(input) {
    const estimate = mimeBase64Bytes(input.textBytes) + mimeBase64Bytes(input.htmlBytes) + input.attachments.reduce((n, a) => n + mimeBase64Bytes(a.size) + 512, 0);
    return estimate > GMAIL_MAX_SEND_BYTES ? `the message would be about ${mb(estimate)} MB; ${TOO_LARGE}` : undefined;
  },
  composedTooLarge(mimeBytes) {
    return mimeBytes > GMAIL_MAX_SEND_BYTES ? `the composed message is ${mb(mimeBytes)} MB; ${TOO_LARGE}` : undefined;
  },
};
