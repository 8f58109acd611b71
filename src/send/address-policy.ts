import { domainToASCII } from 'node:url';
import { z } from 'zod';
import addressparser from 'nodemailer/lib/addressparser';

/**
 * Validation for everything that becomes an address or subject header of mail we send.
 *
 * Header injection is the threat: a CR or LF in a display name, address or subject lets the
 * caller add headers (a hidden Bcc) or a whole body; NUL truncates in C-based MTAs. We refuse
 * such input instead of "cleaning" it, so what the ticket service asked for is exactly what
 * goes out or nothing does. Length limits are RFC 5321 §4.5.3.1: local part 64 octets, domain
 * 255 octets (253 characters in text form), a path of 256 octets including the angle brackets,
 * i.e. 254 for the bare address. Issue messages never repeat the offending value (it is
 * personal data and may reach logs).
 */

export interface EmailAddress {
  name?: string;
  address: string;
}

export const MAX_ADDRESS_LENGTH = 254;
export const MAX_LOCAL_PART_OCTETS = 64;
export const MAX_DOMAIN_LENGTH = 253;
export const MAX_DISPLAY_NAME_LENGTH = 256;
/** RFC 5322 §2.1.1 hard line limit; a longer subject is certainly not a human's. */
export const MAX_SUBJECT_LENGTH = 998;
/** Gmail and Exchange Online both cap a message at 500 recipients. */
export const MAX_RECIPIENTS = 500;

// Any C0 control (CR, LF, NUL, …) or DEL, plus the Unicode line/paragraph separators some
// parsers treat as line breaks.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f\u2028\u2029]/;
// RFC 5322 atext, plus any non-ASCII character (RFC 6531 SMTPUTF8 local parts).
const LOCAL_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uFFFF-]+$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

export type AddressProblem = 'control_character' | 'syntax' | 'too_long';

/** Returns why an addr-spec is unacceptable, or null. */
export function addressProblem(address: string): AddressProblem | null {
  if (CONTROL.test(address)) return 'control_character';
  if (address.length > MAX_ADDRESS_LENGTH) return 'too_long';
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return 'syntax';
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (Buffer.byteLength(local, 'utf8') > MAX_LOCAL_PART_OCTETS) return 'too_long';
  // Dot-atom only: quoted local parts and domain literals ([1.2.3.4]) are legal but only ever
  // seen in abuse, and neither provider needs them to reply.
  if (!local.split('.').every((atom) => atom.length > 0 && LOCAL_ATOM.test(atom))) return 'syntax';
  const ascii = domainToASCII(domain); // IDN → punycode; '' when not a valid host name
  if (ascii === '' || ascii.length > MAX_DOMAIN_LENGTH) return ascii === '' ? 'syntax' : 'too_long';
  const labels = ascii.split('.');
  if (labels.length < 2 || !labels.every((label) => LABEL.test(label))) return 'syntax';
  if (/^\d+$/.test(labels[labels.length - 1]!)) return 'syntax'; // a TLD is never numeric
  return null;
}

export function isValidEmailAddress(address: string): boolean {
  return addressProblem(address) === null;
}

const PROBLEM_MESSAGE: Record<AddressProblem, string> = {
  control_character: 'email address contains a control character',
  syntax: 'invalid email address',
  too_long: 'email address exceeds the RFC 5321 length limits',
};

function checkAddress(value: string, ctx: z.RefinementCtx): string {
  const address = value.trim();
  // Control characters are checked on the raw value: trimming must not hide a trailing CRLF.
  const problem = CONTROL.test(value) ? 'control_character' : addressProblem(address);
  if (problem) ctx.addIssue({ code: 'custom', message: PROBLEM_MESSAGE[problem], params: { problem } });
  return address;
}

function checkName(value: string | undefined, ctx: z.RefinementCtx): string | undefined {
  if (value === undefined) return undefined;
  if (CONTROL.test(value)) {
    ctx.addIssue({ code: 'custom', message: 'display name contains a control character', params: { problem: 'control_character' } });
  } else if (value.length > MAX_DISPLAY_NAME_LENGTH) {
    ctx.addIssue({ code: 'custom', message: 'display name is too long', params: { problem: 'too_long' } });
  }
  const name = value.trim();
  return name === '' ? undefined : name;
}

/** A bare addr-spec: `user@example.com`. */
export const emailAddressSchema = z.string().transform((value, ctx) => checkAddress(value, ctx));

export const displayNameSchema = z.string().transform((value, ctx) => checkName(value, ctx));

function fromObject(value: { name?: string | undefined; address: string }, ctx: z.RefinementCtx): EmailAddress {
  const address = checkAddress(value.address, ctx);
  const name = checkName(value.name, ctx);
  return name === undefined ? { address } : { name, address };
}

/** Parses `"Name" <a@b>`, `Name <a@b>` or `a@b` into mailboxes (groups refused). */
function parseAddressText(value: string, ctx: z.RefinementCtx, single: boolean): EmailAddress[] {
  if (CONTROL.test(value)) {
    ctx.addIssue({ code: 'custom', message: 'address contains a control character', params: { problem: 'control_character' } });
    return [];
  }
  const parsed = addressparser(value);
  if (parsed.some((entry) => entry.group !== undefined)) {
    ctx.addIssue({ code: 'custom', message: 'address groups are not accepted', params: { problem: 'syntax' } });
    return [];
  }
  if (parsed.length === 0 || (single && parsed.length !== 1)) {
    ctx.addIssue({ code: 'custom', message: single ? 'expected exactly one address' : 'no address found', params: { problem: 'syntax' } });
    return [];
  }
  return parsed.map((entry) => fromObject({ name: entry.name, address: entry.address ?? '' }, ctx));
}

// The union only picks the shape; content checks run in one transform so their issues keep
// their own messages instead of collapsing into a generic "invalid_union".
const addressInputSchema = z.union([
  z.string(),
  z.object({ name: z.string().optional(), address: z.string() }).strict(),
]);

function toAddress(value: z.infer<typeof addressInputSchema>, ctx: z.RefinementCtx): EmailAddress {
  return typeof value === 'string' ? (parseAddressText(value, ctx, true)[0] ?? { address: '' }) : fromObject(value, ctx);
}

/** One mailbox as `"Name" <a@b>` / `a@b` text or `{name?, address}`; output is always the object form. */
export const addressSchema = addressInputSchema.transform((value, ctx) => toAddress(value, ctx));

/**
 * Several mailboxes: a comma-separated string, or an array of strings / objects.
 * Output is an array of {@link EmailAddress}; duplicates (case-insensitive) are dropped.
 */
export const addressListSchema = z
  .union([z.string(), z.array(addressInputSchema).max(MAX_RECIPIENTS)])
  .transform((value, ctx) => {
    const list = typeof value === 'string' ? parseAddressText(value, ctx, false) : value.map((entry) => toAddress(entry, ctx));
    const seen = new Set<string>();
    return list.filter((entry) => {
      const key = entry.address.toLowerCase();
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  });

export type AddressInput = z.input<typeof addressSchema>;
export type AddressListInput = z.input<typeof addressListSchema>;

/** Subject line: any Unicode text, but no line breaks or other control characters. */
export const subjectSchema = z
  .string()
  .max(MAX_SUBJECT_LENGTH, { message: `subject exceeds ${MAX_SUBJECT_LENGTH} characters` })
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  .refine((value) => !/[\x00-\x08\x0a-\x1f\x7f\u2028\u2029]/.test(value), {
    message: 'subject contains a line break or control character',
  });
