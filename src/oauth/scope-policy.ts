import type { ProviderName } from '../providers/mail-provider.port.js';

/**
 * The scopes the connector asks for, and nothing broader. Each entry carries the plain-language
 * line the hosted connect page shows, so what we ask and what we explain cannot drift apart.
 */
export interface ScopeRequest {
  /** The exact scope string sent to the provider. */
  scope: string;
  /** Short name a person recognises. */
  label: string;
  /** One line, plain language: what it lets the helpdesk do and why it is needed. */
  why: string;
  /** Granted scopes are checked against this; identity scopes are implicit on some providers. */
  required: boolean;
}

const GMAIL = 'https://www.googleapis.com/auth/';
const GRAPH = 'https://graph.microsoft.com/';

/**
 * Google: gmail.readonly (restricted scope) is the narrowest scope that returns full raw messages
 * and history for sync; gmail.metadata has no bodies and gmail.modify would let us change mail.
 * gmail.send (sensitive) only sends — it cannot read. openid + email identify the account from
 * the signed ID token, so no profile scope is needed.
 */
export const GOOGLE_SCOPES: readonly ScopeRequest[] = Object.freeze([
  { scope: 'openid', label: 'Sign-in identity', why: 'Confirms which Google account you are connecting.', required: true },
  { scope: 'email', label: 'Email address', why: 'Tells the helpdesk the address of the mailbox, so tickets show who they were sent to.', required: true },
  {
    scope: `${GMAIL}gmail.readonly`,
    label: 'Read your email',
    why: 'Lets the helpdesk copy incoming messages into tickets. It cannot delete, move or change your mail.',
    required: true,
  },
  {
    scope: `${GMAIL}gmail.send`,
    label: 'Send email on your behalf',
    why: 'Lets agents reply to tickets from this address. Replies appear in your Sent folder.',
    required: true,
  },
]);

/**
 * Microsoft: Mail.Read (delegated) reads the signed-in user's mailbox, Mail.Send sends as them,
 * User.Read returns `/me` (the address), offline_access issues the refresh token that keeps the
 * connection alive without the customer signing in again. MSAL adds openid/profile itself.
 */
export const MICROSOFT_SCOPES: readonly ScopeRequest[] = Object.freeze([
  {
    scope: `${GRAPH}Mail.Read`,
    label: 'Read your email',
    why: 'Lets the helpdesk copy incoming messages into tickets. It cannot delete, move or change your mail.',
    required: true,
  },
  {
    scope: `${GRAPH}Mail.Send`,
    label: 'Send email as you',
    why: 'Lets agents reply to tickets from this address. Replies appear in your Sent Items.',
    required: true,
  },
  {
    scope: `${GRAPH}User.Read`,
    label: 'Your profile',
    // Also read by the send-as check (graph-send-as.ts: /me?$select=mail,proxyAddresses).
    why: 'Tells the helpdesk the address of the mailbox you are connecting, and its email aliases when an agent sends from one of them.',
    required: true,
  },
  {
    scope: 'offline_access',
    label: 'Stay connected',
    why: 'Keeps the mailbox connected when you are not signed in, so new mail keeps arriving. You can disconnect at any time.',
    required: true,
  },
]);

/**
 * Microsoft 365 shared mailbox (issue 15 item 1): a member of the shared mailbox signs in and
 * additionally grants the delegated `.Shared` scopes, which reach `/users/{shared address}/…`
 * only where the member has been given access. Asked for only when the connect session names a
 * shared mailbox; the member's own mailbox is never read (its Mail.Read grant stays unused).
 */
export const MICROSOFT_SHARED_SCOPES: readonly ScopeRequest[] = Object.freeze([
  {
    scope: `${GRAPH}Mail.Read.Shared`,
    label: 'Read the shared mailbox',
    why: 'Lets the helpdesk copy incoming messages of the shared mailbox you are a member of into tickets; it cannot change that mail.',
    required: true,
  },
  {
    scope: `${GRAPH}Mail.Send.Shared`,
    label: 'Send email as the shared mailbox',
    why: 'Lets agents reply to tickets from the shared address. Replies appear in the shared mailbox’s Sent Items.',
    required: true,
  },
]);

/** What the connect session asks for: `sharedMailbox` only with a Microsoft shared mailbox named. */
export interface ScopeOptions {
  sharedMailbox?: boolean;
}

export function scopesFor(provider: ProviderName, opts: ScopeOptions = {}): readonly ScopeRequest[] {
  if (provider === 'google') return GOOGLE_SCOPES;
  return opts.sharedMailbox ? [...MICROSOFT_SCOPES, ...MICROSOFT_SHARED_SCOPES] : MICROSOFT_SCOPES;
}

export function requestedScopes(provider: ProviderName, opts: ScopeOptions = {}): string[] {
  return scopesFor(provider, opts).map((s) => s.scope);
}

/**
 * Granted `.Shared` scopes on a connection that did not name a shared mailbox: the grant reaches
 * further than the connection needs, so the connect flow refuses it instead of storing it.
 */
export function unrequestedSharedScopes(provider: ProviderName, granted: readonly string[], opts: ScopeOptions = {}): string[] {
  if (provider !== 'microsoft' || opts.sharedMailbox) return [];
  const shared = new Set(MICROSOFT_SHARED_SCOPES.map((s) => normalizeScope(s.scope)));
  return granted.filter((g) => shared.has(normalizeScope(g)));
}

/** Google normalises `email` to the userinfo scope in token responses; both mean the same grant. */
const EQUIVALENT: Readonly<Record<string, readonly string[]>> = {
  email: ['email', 'https://www.googleapis.com/auth/userinfo.email'],
  profile: ['profile', 'https://www.googleapis.com/auth/userinfo.profile'],
};

/**
 * Required scopes the provider did not grant (the customer may untick some on the consent
 * screen). Graph scopes are compared case-insensitively and with or without the resource
 * prefix, because Entra echoes `Mail.Read` or `https://graph.microsoft.com/Mail.Read`.
 */
export function missingScopes(provider: ProviderName, granted: readonly string[], opts: ScopeOptions = {}): ScopeRequest[] {
  const have = new Set(granted.map((s) => normalizeScope(s)));
  return scopesFor(provider, opts).filter((req) => {
    if (!req.required) return false;
    const alternatives = EQUIVALENT[req.scope] ?? [req.scope];
    return !alternatives.some((alt) => have.has(normalizeScope(alt)));
  });
}

function normalizeScope(scope: string): string {
  const lower = scope.trim().toLowerCase();
  return lower.startsWith(GRAPH.toLowerCase()) ? lower.slice(GRAPH.length) : lower;
}
