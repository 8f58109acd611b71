import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { domainToASCII } from 'node:url';
import { z } from 'zod';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import addressparser from 'nodemailer/lib/addressparser';
import {
  addressListSchema,
  addressProblem,
  displayNameSchema,
  emailAddressSchema,
  subjectSchema,
  MAX_RECIPIENTS,
  type EmailAddress,
} from './address-policy.js';

/**
 * Builds the RFC 5322 message for a reply (or a new message) sent through the connected
 * mailbox. Pure apart from the injected clock and randomness; the provider send is elsewhere.
 *
 * Threading (provider-facts §1.4, §4.3): Gmail threads a sent message when the request carries
 * the threadId, "The References and In-Reply-To headers must be set in compliance with the
 * RFC 2822 standard" and "The Subject headers must match"; Exchange threads MIME replies by the
 * same headers. So: In-Reply-To = the original Message-ID, References = the original References
 * + its Message-ID (RFC 5322 §3.6.4), and the subject keeps the original text behind a single
 * "Re: ".
 *
 * Bcc — where the recipients come from depends on how the MIME is submitted, so the caller must
 * say (`bccDelivery`), there is no default:
 * - `provider_headers`: Gmail `messages.send` "Sends the specified message to the recipients in
 *   the To, Cc, and Bcc headers" (API discovery text) — there is no separate envelope, so a Bcc
 *   that is not in the raw MIME is silently not delivered. Exchange/Graph MIME sends likewise
 *   turn a Bcc header into Bcc recipients, and [MS-OXCMAIL] §2.1.3.1.1.2 has it strip them from
 *   what goes out over SMTP. Both providers remove the header before transmission and keep it
 *   only in the sender's Sent copy. We therefore keep the header (MailComposer `keepBcc`).
 * - `smtp_envelope`: for direct SMTP submission. RFC 5322 §3.6.3: the Bcc line is removed and
 *   its addresses go only into the envelope (RCPT TO). MailComposer drops Bcc by default.
 * In both cases `envelope.to` lists every recipient, Bcc included.
 */

export type BccDelivery = 'provider_headers' | 'smtp_envelope';

export interface OutgoingAttachment {
  filename: string;
  contentType: string;
  content: Buffer | Readable;
}

export interface ComposerDeps {
  now: () => Date;
  randomBytes: (size: number) => Buffer;
}

export const systemComposerDeps: ComposerDeps = { now: () => new Date(), randomBytes: nodeRandomBytes };

export interface ComposedHeaders {
  messageId: string;
  date: Date;
  from: EmailAddress;
  to: EmailAddress[];
  cc: EmailAddress[];
  bcc: EmailAddress[];
  subject: string;
  inReplyTo?: string;
  references: string[];
}

export interface ComposedMessage {
  /** The RFC 5322 message (CRLF line ends), ready to base64(url)-encode for the provider. */
  mime: Buffer;
  /** `<random@domain>`: record it before sending, so the sent copy can be recognised on sync. */
  messageId: string;
  /** Every recipient address (To, Cc and Bcc) and the sender, as an SMTP envelope would carry them. */
  envelope: { from: string; to: string[] };
  headers: ComposedHeaders;
  /** Whether the MIME carries a Bcc header (see {@link BccDelivery}). */
  bccInHeader: boolean;
}

/** Input refused before anything was composed. Public: names fields, never their values. */
export class MessageCompositionError extends Error {
  override readonly name = 'MessageCompositionError';
  readonly code: 'invalid_message' | 'no_recipients';
  readonly issues: { path: string; message: string }[];
  readonly expose = true;
  readonly status = 422;

  constructor(code: 'invalid_message' | 'no_recipients', issues: { path: string; message: string }[]) {
    super(code === 'no_recipients' ? 'the message has no valid recipient' : `invalid message: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.code = code;
    this.issues = issues;
  }
}

// ---------------------------------------------------------------------------------------------
// Input schemas

export const MAX_BODY_LENGTH = 10_000_000;
export const MAX_ATTACHMENTS = 100;
/**
 * Ids an outgoing References header carries at most; RFC 5537 §3.4.4-style trimming keeps the
 * first and the latest ones. Not the number stored per received message (MAX_REFERENCES in
 * ingest/message-id.ts, 200): a reply needs only the root and the nearest ancestors, and long
 * References headers are what some receiving servers truncate or refuse.
 */
export const REPLY_REFERENCES_KEPT = 20;

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f\u2028\u2029]/;
// msg-id (RFC 5322 §3.6.4) in its common dot-atom form, printable ASCII without <>, spaces or a second @.
const MSG_ID = /^<[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>$/;

const mailboxSchema = z
  .object({ address: emailAddressSchema, displayName: displayNameSchema.optional() })
  .strict();

const bodySchema = z
  .object({ text: z.string().max(MAX_BODY_LENGTH).optional(), html: z.string().max(MAX_BODY_LENGTH).optional() })
  .strict()
  .refine((b) => (b.text ?? '').trim() !== '' || (b.html ?? '').trim() !== '', {
    message: 'text or html is required and must not be empty',
  });

/** An attachment's file name: no control characters, no path (shared with the HTTP request schema). */
export const attachmentFilenameSchema = z
  .string()
  .min(1)
  .max(255)
  .refine((v) => !CONTROL.test(v), { message: 'filename contains a control character' })
  .refine((v) => !/[/\\]/.test(v), { message: 'filename must not contain a path' });

export const attachmentContentTypeSchema = z
  .string()
  .max(127)
  .regex(/^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+$/, { message: 'contentType must be type/subtype' });

const attachmentSchema = z
  .object({
    filename: attachmentFilenameSchema,
    contentType: attachmentContentTypeSchema,
    content: z.custom<Buffer | Readable>((v) => Buffer.isBuffer(v) || v instanceof Readable, {
      message: 'content must be a Buffer or a Readable stream',
    }),
  })
  .strict();

const messageIdSchema = z
  .string()
  .max(250)
  .transform((v) => normaliseMessageId(v))
  .refine((v): v is string => v !== null, { message: 'invalid Message-ID' });

/** Addresses of the original come from inbound mail: unusable entries are skipped, not fatal. */
const lenientAddressesSchema = z
  .union([z.string(), z.object({ name: z.string().optional(), address: z.string() }), z.array(z.unknown())])
  .optional()
  .transform((value) => lenientAddresses(value));

const originalSchema = z.object({
  messageId: z.string().nullish(),
  references: z.array(z.string()).max(1000).optional(),
  subject: z.string().nullish(),
  from: lenientAddressesSchema,
  replyTo: lenientAddressesSchema,
  to: lenientAddressesSchema,
  cc: lenientAddressesSchema,
});

const commonSchema = z.object({
  mailbox: mailboxSchema,
  body: bodySchema,
  to: addressListSchema.optional(),
  cc: addressListSchema.optional(),
  bcc: addressListSchema.optional(),
  attachments: z.array(attachmentSchema).max(MAX_ATTACHMENTS).optional(),
  messageIdDomain: z
    .string()
    .optional()
    .refine((v) => v === undefined || /^[a-z0-9.-]+$/i.test(domainToASCII(v)), { message: 'invalid messageIdDomain' }),
  bccDelivery: z.enum(['provider_headers', 'smtp_envelope']),
});

export const replyInputSchema = commonSchema.extend({ original: originalSchema }).strict();
export const newMessageInputSchema = commonSchema.extend({ subject: subjectSchema }).strict();

export type ReplyInput = z.input<typeof replyInputSchema>;
export type NewMessageInput = z.input<typeof newMessageInputSchema>;

// ---------------------------------------------------------------------------------------------
// Helpers

/** `id@host` or `<id@host>` → `<id@host>`; null when it is not a usable msg-id. */
export function normaliseMessageId(value: string): string | null {
  const trimmed = value.trim();
  const bracketed = trimmed.startsWith('<') ? trimmed : `<${trimmed}>`;
  return MSG_ID.test(bracketed) && bracketed.length <= 250 ? bracketed : null;
}

function lenientAddresses(value: unknown): EmailAddress[] {
  const out: EmailAddress[] = [];
  const add = (name: unknown, address: unknown) => {
    if (typeof address !== 'string' || addressProblem(address.trim()) !== null) return;
    const cleanName = typeof name === 'string' && !CONTROL.test(name) && name.trim() !== '' ? name.trim().slice(0, 256) : undefined;
    out.push(cleanName ? { name: cleanName, address: address.trim() } : { address: address.trim() });
  };
  const visit = (entry: unknown) => {
    if (typeof entry === 'string') {
      if (CONTROL.test(entry)) return;
      for (const parsed of addressparser(entry, { flatten: true })) add(parsed.name, parsed.address);
    } else if (entry && typeof entry === 'object' && !Array.isArray(entry)) {
      const record = entry as { name?: unknown; address?: unknown };
      add(record.name, record.address);
    }
  };
  if (Array.isArray(value)) value.forEach(visit);
  else visit(value);
  return out;
}

const REPLY_PREFIX = /^\s*(?:re|aw|sv|antw|vs|odp)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*/i;

/**
 * "Re: " + the original subject, with ONE existing reply prefix (Re:, RE:, AW:, SV:, Antw: …,
 * also "Re[2]:") removed first so replies do not stack "Re: Re: ". Only one is removed: a
 * subject that already reads "Re: Re: x" stays as it is, which keeps Gmail's subject match.
 */
export function replySubject(original: string | null | undefined): string {
  const base = (original ?? '').replace(/[\r\n]+[ \t]*/g, ' ').replace(CONTROL, '').trim();
  const rest = base.replace(REPLY_PREFIX, '');
  return rest === '' ? 'Re:' : `Re: ${rest}`;
}

/** Original References + its Message-ID, deduplicated, trimmed to keep the first and the latest. */
export function buildReferences(references: readonly string[], messageId: string | null, max = REPLY_REFERENCES_KEPT): string[] {
  const ids: string[] = [];
  const seen = new Set<string>();
  const candidates = [...references.flatMap((r) => r.split(/\s+/)), ...(messageId ? [messageId] : [])];
  for (const candidate of candidates) {
    if (candidate === '') continue;
    const id = normaliseMessageId(candidate);
    if (id === null || seen.has(id)) continue;
    seen.add(id);
    ids.push(id);
  }
  if (ids.length <= max) return ids;
  // The first id names the thread root, the last ones the immediate context: keep both ends.
  return [ids[0]!, ...ids.slice(ids.length - (max - 1))];
}

function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((issue) => ({ path: issue.path.join('.') || '(root)', message: issue.message }));
}

function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function excluding(list: EmailAddress[], taken: Set<string>): EmailAddress[] {
  return list.filter((entry) => {
    const key = entry.address.toLowerCase();
    if (taken.has(key)) return false;
    taken.add(key);
    return true;
  });
}

interface BuildSpec {
  mailbox: { address: string; displayName?: string | undefined };
  to: EmailAddress[];
  cc: EmailAddress[];
  bcc: EmailAddress[];
  subject: string;
  inReplyTo?: string;
  references: string[];
  body: { text?: string | undefined; html?: string | undefined };
  attachments: OutgoingAttachment[];
  messageIdDomain: string | undefined;
  bccDelivery: BccDelivery;
}

async function build(spec: BuildSpec, deps: ComposerDeps): Promise<ComposedMessage> {
  // A recipient gets one copy: To wins over Cc, Cc over Bcc.
  const taken = new Set<string>();
  const to = excluding(spec.to, taken);
  const cc = excluding(spec.cc, taken);
  const bcc = excluding(spec.bcc, taken);
  if (to.length + cc.length + bcc.length === 0) {
    throw new MessageCompositionError('no_recipients', [{ path: 'to', message: 'no valid recipient' }]);
  }
  if (to.length + cc.length + bcc.length > MAX_RECIPIENTS) {
    throw new MessageCompositionError('invalid_message', [{ path: 'to', message: `at most ${MAX_RECIPIENTS} recipients` }]);
  }

  const domain = domainToASCII(spec.messageIdDomain ?? spec.mailbox.address.slice(spec.mailbox.address.lastIndexOf('@') + 1));
  const date = deps.now();
  const messageId = `<${date.getTime().toString(36)}.${deps.randomBytes(16).toString('hex')}@${domain}>`;
  const from: EmailAddress = spec.mailbox.displayName
    ? { name: spec.mailbox.displayName, address: spec.mailbox.address }
    : { address: spec.mailbox.address };

  const text = spec.body.text !== undefined && spec.body.text.trim() !== '' ? spec.body.text : undefined;
  const html = spec.body.html !== undefined && spec.body.html.trim() !== '' ? spec.body.html : undefined;

  const node = new MailComposer({
    from,
    to,
    ...(cc.length ? { cc } : {}),
    ...(bcc.length ? { bcc } : {}),
    subject: spec.subject,
    messageId,
    date,
    ...(spec.inReplyTo ? { inReplyTo: spec.inReplyTo } : {}),
    ...(spec.references.length ? { references: spec.references } : {}),
    ...(text !== undefined ? { text } : {}),
    ...(html !== undefined ? { html } : {}),
    attachments: spec.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: a.content })),
    // Content is only ever what we were handed: never let a value be read as a path or URL.
    disableFileAccess: true,
    disableUrlAccess: true,
    // RFC 5322 §2.3: lines end in CRLF.
    newline: 'win',
  }).compile();
  const bccInHeader = spec.bccDelivery === 'provider_headers';
  node.keepBcc = bccInHeader;
  const envelope = node.getEnvelope();
  const mime = await node.build();

  return {
    mime,
    messageId,
    envelope: { from: envelope.from === false ? spec.mailbox.address : envelope.from, to: envelope.to },
    headers: {
      messageId,
      date,
      from,
      to,
      cc,
      bcc,
      subject: spec.subject,
      ...(spec.inReplyTo ? { inReplyTo: spec.inReplyTo } : {}),
      references: spec.references,
    },
    bccInHeader,
  };
}

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Composes a reply to `original` from `mailbox`. Recipients: `to` when given, else the
 * original's Reply-To, else its From; when that is the mailbox itself (replying to our own
 * sent message) the original's To is used instead, as mail clients do. `cc`/`bcc` are only
 * what the caller asks for (this is "reply", not "reply all").
 */
export async function composeReply(input: ReplyInput, deps: ComposerDeps = systemComposerDeps): Promise<ComposedMessage> {
  const parsed = replyInputSchema.safeParse(input);
  if (!parsed.success) throw new MessageCompositionError('invalid_message', issuesOf(parsed.error));
  const v = parsed.data;

  let originalMessageId: string | null = null;
  if (v.original.messageId !== undefined && v.original.messageId !== null && v.original.messageId.trim() !== '') {
    const checked = messageIdSchema.safeParse(v.original.messageId);
    if (!checked.success) {
      throw new MessageCompositionError('invalid_message', [{ path: 'original.messageId', message: 'invalid Message-ID' }]);
    }
    originalMessageId = checked.data;
  }

  const self = v.mailbox.address;
  const notSelf = (list: EmailAddress[]) => list.filter((a) => !sameAddress(a.address, self));
  let to: EmailAddress[];
  if (v.to && v.to.length > 0) to = v.to;
  else {
    const preferred = v.original.replyTo.length > 0 ? v.original.replyTo : v.original.from;
    to = notSelf(preferred).length > 0 ? preferred : notSelf(v.original.to);
  }

  return build(
    {
      mailbox: v.mailbox,
      to,
      cc: v.cc ?? [],
      bcc: v.bcc ?? [],
      subject: replySubject(v.original.subject),
      ...(originalMessageId ? { inReplyTo: originalMessageId } : {}),
      references: buildReferences(v.original.references ?? [], originalMessageId),
      body: v.body,
      attachments: v.attachments ?? [],
      messageIdDomain: v.messageIdDomain,
      bccDelivery: v.bccDelivery,
    },
    deps,
  );
}

/** Composes a new message (not a reply) from `mailbox`. */
export async function composeNew(input: NewMessageInput, deps: ComposerDeps = systemComposerDeps): Promise<ComposedMessage> {
  const parsed = newMessageInputSchema.safeParse(input);
  if (!parsed.success) throw new MessageCompositionError('invalid_message', issuesOf(parsed.error));
  const v = parsed.data;
  return build(
    {
      mailbox: v.mailbox,
      to: v.to ?? [],
      cc: v.cc ?? [],
      bcc: v.bcc ?? [],
      subject: v.subject,
      references: [],
      body: v.body,
      attachments: v.attachments ?? [],
      messageIdDomain: v.messageIdDomain,
      bccDelivery: v.bccDelivery,
    },
    deps,
  );
}
