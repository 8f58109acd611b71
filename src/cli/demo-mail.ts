import { randomUUID } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';

/**
 * The mail `mailbox-connector demo` delivers into the stand-in mailboxes. Its subject and body
 * lines are the demo's "mail content": the demo never prints them (it shows ids, event types,
 * verdicts and thread ids), and test/integration/demo-story.test.ts checks its output for
 * `DEMO_CONTENT_MARKERS`.
 */
export const DEMO_CONTENT_MARKERS = ['my order has not arrived', 'Where is my order', 'please see the attached invoice', 'invoice-7731.com', 'we are looking into it'] as const;

/** The text of the demo's replies: mail content as well, never printed. */
export const DEMO_REPLY_TEXT = 'Thanks for writing in, we are looking into it. (demo reply)';

/**
 * The EICAR anti-virus test file (https://www.eicar.org/download-anti-malware-testfile/), kept as
 * hex so this source and its build are not themselves flagged by a scanner. Every ClamAV
 * database detects it (official: `Eicar-Test-Signature`; the project's test database in
 * ../shared/clamav: `Eicar-Test-Signature.UNOFFICIAL`).
 */
const EICAR_HEX =
  '58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a';

export interface DemoMessage {
  /** Message-ID without angle brackets: the reply must name it in In-Reply-To and References. */
  messageId: string;
  raw: Buffer;
  infected: boolean;
}

/** A customer's ticket mail to `to`; `infected` adds the EICAR test file as an attachment. */
export async function composeDemoMessage(to: string, n: number, opts: { infected?: boolean } = {}): Promise<DemoMessage> {
  const messageId = `demo-${randomUUID()}@example.org`;
  const composer = new MailComposer({
    from: `Customer ${n} <customer${n}@example.org>`,
    to,
    subject: opts.infected ? `Demo ticket #${n}: please see the attached invoice` : `Demo ticket #${n}: my order has not arrived`,
    date: new Date(),
    messageId: `<${messageId}>`,
    text: opts.infected ? `Hello, please see the attached invoice (demo message ${n}).` : `Hello, this is demo message ${n}. Where is my order?`,
    ...(opts.infected ? { attachments: [{ filename: 'invoice-7731.com', content: Buffer.from(EICAR_HEX, 'hex'), contentType: 'application/octet-stream' }] } : {}),
  });
  const raw = await new Promise<Buffer>((resolve, reject) => {
    composer.compile().build((err, message) => (err ? reject(err) : resolve(message)));
  });
  return { messageId, raw, infected: Boolean(opts.infected) };
}
