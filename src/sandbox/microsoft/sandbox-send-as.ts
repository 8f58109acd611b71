import type { Recipient } from '@microsoft/microsoft-graph-types';
import { GraphHttpError } from './sandbox-http.util.js';
import type { SandboxMailboxStore, SandboxUser, SendRight } from './sandbox-mailbox.store.js';

/**
 * Who submits a message: the signed-in user (delegated token, with its scopes) or, for an
 * app-only token, the mailbox named in the path ("applications … with Mail.Send … can send mail
 * as any user in the organization by sending the mail normally through the user's mailbox").
 */
export interface SubmittingActor {
  user: SandboxUser;
  scopes: readonly string[];
  appOnly: boolean;
}

export interface AuthorizedSubmission {
  /** What goes out: From after Exchange's checks (an alias may be rewritten), Graph's `sender`. */
  from: Recipient;
  sender: Recipient;
  /** The MIME as delivered: From rewritten / Sender added where Exchange would do so. */
  mime: Buffer;
}

/** Graph's answer (outlook-send-mail-from-other-user, example 2), verbatim. */
export function sendAsDenied(): GraphHttpError {
  return new GraphHttpError(
    403,
    'ErrorSendAsDenied',
    'The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account. Cannot submit message.',
  );
}

/**
 * Exchange's check at submission (sendMail, reply, draft send) of the From a message names, as
 * documented in "Send Outlook messages from another user" and Set-OrganizationConfig:
 * - the mailbox's own primary address: sent as is (a delegated caller sending from another
 *   mailbox it reaches under `/users/{id}` needs Send As or Send on Behalf on it as well);
 * - one of its aliases (proxyAddresses `smtp:`): kept when the organization enabled
 *   SendFromAliasEnabled, otherwise rewritten to the primary address (Exchange's default);
 * - any other mailbox, shared mailbox or its alias: the submitting identity needs Send As
 *   (From only; `sender` = From) or Send on Behalf (`sender` = the submitter, recipients see
 *   "X on behalf of Y"); a delegated token also needs Mail.Send.Shared. Otherwise, and for an
 *   address outside the organization, 403 ErrorSendAsDenied and nothing is sent.
 */
export function authorizeSubmission(store: SandboxMailboxStore, mailbox: SandboxUser, actor: SubmittingActor, requestedFrom: Recipient | undefined, mime: Buffer): AuthorizedSubmission {
  const identity = actor.appOnly ? mailbox : actor.user;
  const requested = requestedFrom?.emailAddress?.address ?? mailbox.email;
  const target = store.findByAnyAddress(requested);
  if (!target || target.tenantId !== mailbox.tenantId) throw sendAsDenied();
  let right: SendRight | 'self';
  if (target.id === identity.id) right = 'self';
  else {
    const granted = target.sendRights.get(identity.id);
    const scoped = actor.appOnly || actor.scopes.some((s) => /mail\.send\.shared$/i.test(s));
    if (!granted || !scoped) throw sendAsDenied();
    right = granted;
  }
  const isAlias = requested.toLowerCase() !== target.email.toLowerCase();
  const fromAddress = isAlias && !store.sendFromAliasEnabled ? target.email : requested;
  const from: Recipient = { emailAddress: { address: fromAddress, name: requestedFrom?.emailAddress?.name || target.displayName } };
  const sender: Recipient = right === 'SendOnBehalf' ? { emailAddress: { address: identity.email, name: identity.displayName } } : from;
  const headers: Record<string, string> = {};
  if (fromAddress !== requested) headers.From = formatAddress(from);
  if (right === 'SendOnBehalf') headers.Sender = formatAddress(sender);
  return { from, sender, mime: Object.keys(headers).length === 0 ? mime : replaceHeaders(mime, headers) };
}

/** An RFC 5322 mailbox for a header (display name quoted, or an encoded-word when not ASCII). */
export function formatAddress(r: Recipient): string {
  const address = r.emailAddress?.address ?? '';
  const name = r.emailAddress?.name;
  if (!name || name === address) return address;
  const display = /^[\x20-\x7e]*$/.test(name) ? `"${name.replace(/["\\]/g, '\\$&')}"` : `=?UTF-8?B?${Buffer.from(name, 'utf8').toString('base64')}?=`;
  return `${display} <${address}>`;
}

/** Replaces (or adds) top-level header fields, folded continuation lines included; the body is untouched. */
export function replaceHeaders(mime: Buffer, headers: Record<string, string>): Buffer {
  const text = mime.toString('latin1');
  const m = /\r?\n\r?\n/.exec(text);
  const headEnd = m ? m.index : text.length;
  const head = text.slice(0, headEnd);
  const rest = text.slice(headEnd);
  const eol = head.includes('\r\n') ? '\r\n' : '\n';
  const names = new Set(Object.keys(headers).map((k) => k.toLowerCase()));
  const kept: string[] = [];
  let dropping = false;
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) kept.push(line);
      continue;
    }
    const name = line.slice(0, line.indexOf(':')).trim().toLowerCase();
    dropping = names.has(name);
    if (!dropping) kept.push(line);
  }
  for (const [k, v] of Object.entries(headers)) kept.unshift(`${k}: ${v}`);
  return Buffer.from(kept.join(eol) + rest, 'latin1');
}
