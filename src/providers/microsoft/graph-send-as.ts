import { z } from 'zod';
import type { SendAsAddress } from '../mail-provider.port.js';
import { isProviderError, ProviderError, unexpectedResponse } from '../provider-error.js';
import type { GraphRequestRunner } from './graph-request.runner.js';

/**
 * Send-as addresses of a Microsoft 365 mailbox (issue 15 item 4).
 *
 * - Aliases: the mailbox's SMTP proxy addresses (`SMTP:` = primary, `smtp:` = aliases) from
 *   `GET /me?$select=mail,proxyAddresses`, which the delegated `User.Read` the connector already
 *   holds allows (user-get: User.Read reads the signed-in user's profile). They are the
 *   organization's own addresses of this mailbox, so they count as verified. Reading them for
 *   another mailbox (a shared mailbox through a member, an organization install's app token)
 *   needs `User.Read.All`, which the connector does not ask for: there only the mailbox's own
 *   address is listed.
 * - Send As / Send on Behalf of other mailboxes: Graph has no API that lists them
 *   (outlook-send-mail-from-other-user: "It's not currently possible to use Microsoft Graph to
 *   query which mailboxes the authenticated user has permissions for"); the caller asks for them
 *   explicitly and Exchange decides at submission (403 ErrorSendAsDenied → SEND_AS_DENIED).
 */

/** ProviderError reason of Exchange's refusal of the From address (Graph `ErrorSendAsDenied`). */
export const SEND_AS_DENIED = 'send_as_denied';

const proxySchema = z.object({
  mail: z.string().nullable().optional(),
  proxyAddresses: z.array(z.string()).optional(),
});

/** The `smtp:` / `SMTP:` entries of a proxyAddresses list (X500:, SIP: and other types are not mail addresses). */
export function smtpProxyAddresses(proxyAddresses: readonly string[], mail: string | null | undefined): SendAsAddress[] {
  const out: SendAsAddress[] = [];
  const seen = new Set<string>();
  for (const entry of proxyAddresses) {
    const m = /^(smtp):(.+@.+)$/i.exec(entry.trim());
    if (!m) continue;
    const address = m[2] ?? '';
    const key = address.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ address, displayName: undefined, isPrimary: m[1] === 'SMTP', verified: true });
  }
  if (mail && !seen.has(mail.toLowerCase())) out.unshift({ address: mail, displayName: undefined, isPrimary: true, verified: true });
  return out;
}

/** Reads the signed-in user's SMTP addresses (delegated token, `/me` only). */
export async function readOwnSmtpAddresses(runner: GraphRequestRunner): Promise<SendAsAddress[]> {
  const body = await runner.json({ method: 'GET', path: '/me?$select=mail,proxyAddresses', operation: 'read', idempotent: true });
  const parsed = proxySchema.safeParse(body);
  if (!parsed.success) throw unexpectedResponse('microsoft', '/me?$select=proxyAddresses', { issues: parsed.error.issues });
  return smtpProxyAddresses(parsed.data.proxyAddresses ?? [], parsed.data.mail);
}

/**
 * Graph's `ErrorSendAsDenied` (403) as its own reason: a permanent refusal of this From — not a
 * lost grant (the mailbox keeps working), never retried.
 */
export function sendAsDenied(err: unknown): unknown {
  if (!isProviderError(err) || err.status !== 403 || (err.reason ?? '').toLowerCase() !== 'errorsendasdenied') return err;
  return new ProviderError('microsoft', 'invalid_request', 'Exchange refused the From address: the sender has neither Send As nor Send on Behalf permission for it (ErrorSendAsDenied)', {
    status: 403,
    reason: SEND_AS_DENIED,
    cause: err,
  });
}
