import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { Recipient } from '@microsoft/microsoft-graph-types';
import type { StoredAttachment } from './sandbox-mailbox.store.js';

export interface ComposeInput {
  from: Recipient | undefined;
  to: Recipient[];
  cc: Recipient[];
  subject: string;
  messageId: string;
  inReplyTo: string | undefined;
  references: string[];
  date: Date;
  bodyContentType: 'text' | 'html';
  bodyContent: string;
  attachments: StoredAttachment[];
}

function addr(r: Recipient): { name: string; address: string } {
  return { name: r.emailAddress?.name ?? '', address: r.emailAddress?.address ?? '' };
}

/** Builds the MIME Exchange would hold for a message created through JSON (what $value returns). */
export async function composeMime(input: ComposeInput): Promise<Buffer> {
  const composer = new MailComposer({
    from: input.from ? addr(input.from) : undefined,
    to: input.to.map(addr),
    cc: input.cc.map(addr),
    subject: input.subject,
    messageId: input.messageId,
    inReplyTo: input.inReplyTo,
    references: input.references.length > 0 ? input.references.join(' ') : undefined,
    date: input.date,
    ...(input.bodyContentType === 'html' ? { html: input.bodyContent } : { text: input.bodyContent }),
    attachments: input.attachments.map((a) => ({
      filename: a.name,
      content: a.bytes,
      contentType: a.contentType,
      ...(a.isInline ? { contentDisposition: 'inline' as const, cid: a.contentId } : {}),
    })),
  });
  return composer.compile().build();
}
