import type { ProviderName } from './mail-provider.port.js';

/**
 * The grant port: how a mailbox's access is obtained (user consent), stored (an encrypted
 * credential the provider room encodes and decodes), turned into access tokens and revoked.
 *
 * A provider may hold more than one kind of credential: `delegated` is a user's own consent
 * (Google refresh token, Microsoft MSAL cache); an organization install (Microsoft client
 * credentials, Google service-account JWT with domain-wide delegation) is another kind. Each
 * kind is one `CredentialKindPort` in the provider's room, and `composeGrantPort` dispatches on
 * the stored credential's `kind` — the token vault and the connect service never branch on the
 * provider name or the kind.
 */

/** The kind of a user's own consent (authorization code + PKCE). */
export const DELEGATED = 'delegated';

/**
 * A decoded mailbox credential. Plaintext: held in memory only for the calls that need it; at
 * rest it is encrypted under the mailbox DEK (the token vault). Fields beyond these belong to the
 * provider room that owns the kind.
 */
export interface GrantCredential {
  readonly provider: ProviderName;
  /** `delegated`, or a kind an organization install adds. */
  readonly kind: string;
  /**
   * Issued by a sandbox stand-in (SANDBOX=1). Stand-ins keep their users in memory, so such a
   * grant means nothing to a restarted stand-in or to the real provider; the connector says so
   * (`reauth_required`, reason `sandbox_reset`). Real grants never carry it.
   */
  readonly sandbox?: true;
}

/** An access token and when it expires. */
export interface AccessGrant {
  accessToken: string;
  expiresAt: Date;
}

/** One mailbox's stored grant as a grant port sees it during one token call. */
export interface StoredGrantAccess<C extends GrantCredential = GrantCredential> {
  readonly mailboxId: string;
  /** The credential as decrypted when the call began. */
  readonly credential: C;
  /** The id stored encrypted beside the credential (MSAL homeAccountId); null when none. */
  readonly accountId: string | null;
  /** The credential read fresh from storage (another process may have rotated it); null once forgotten. */
  reload(): Promise<C | null>;
  /** Stores a rotated credential (Google refresh-token rotation, a rewritten MSAL cache), encrypted. */
  store(credential: C): Promise<void>;
}

/** What revoking a stored credential at the provider did. */
export type GrantRevokeResult =
  | 'revoked'
  /** Already revoked or expired: what a revoke wanted. */
  | 'already_invalid'
  /** The provider offers no per-app revoke for this kind (Microsoft delegated grants). */
  | 'not_supported';

/**
 * One kind of credential a provider accepts: how its stored document is read and written, how it
 * becomes an access token, and how it is revoked. Failures are ProviderErrors (`auth_revoked`
 * for a dead grant, `transient`/`rate_limited` to retry); `GrantNotConfiguredError` when this
 * run lacks what the kind needs (e.g. no OAuth client id).
 */
export interface CredentialKindPort<C extends GrantCredential = GrantCredential> {
  readonly kind: C['kind'];
  /**
   * The stored document's own fields (without `v`, `provider`, `kind`, `sandbox`) → the
   * credential; an unknown shape throws (fail closed).
   */
  parse(fields: Record<string, unknown>, common: { sandbox?: true }): C;
  /** The credential's own fields to store (JSON; `v`, `provider`, `kind`, `sandbox` are added around them). */
  serialize(credential: C): Record<string, unknown>;
  accessToken(stored: StoredGrantAccess<C>, opts: { forceRefresh: boolean }): Promise<AccessGrant>;
  revoke(credential: C): Promise<GrantRevokeResult>;
}

/** What a successful code exchange produced. */
export interface ConsentGrant extends AccessGrant {
  grantedScopes: string[];
  /** What to store; undefined when the provider issued no offline access (nothing to refresh with). */
  credential: GrantCredential | undefined;
  /** Stored encrypted beside the credential (MSAL homeAccountId: how the account is found again). */
  accountId: string | undefined;
  /** The OpenID ID token, when one came back (identify verifies it). */
  idToken: string | undefined;
}

/** A user's consent: authorization code flow with PKCE (S256). */
export interface ConsentPort {
  pkce(): Promise<{ verifier: string; challenge: string }>;
  authorizeUrl(input: { state: string; codeChallenge: string; loginHint?: string }): Promise<string>;
  exchange(code: string, codeVerifier: string): Promise<ConsentGrant>;
  /** The connected mailbox's address (a verified ID token, else the mail API's profile). */
  identify(grant: ConsentGrant): Promise<string>;
  /**
   * Takes back a grant that will not be kept (a permission unticked, identification failed, the
   * wrong account): it must not linger in the customer's account. `not_supported` where the
   * provider has no per-app revoke.
   */
  discard(grant: ConsentGrant): Promise<GrantRevokeResult>;
}

/** Everything the token vault and the connect service need from one provider's grants. */
export interface GrantPort {
  readonly provider: ProviderName;
  /** For messages shown to people ("Google", "Microsoft"). */
  readonly displayName: string;
  /** The user-consent flow; undefined when this run has no OAuth client for the provider. */
  readonly consent: ConsentPort | undefined;
  /** The credential kinds this run can use. */
  readonly kinds: readonly string[];
  /** The credential as stored (UTF-8 JSON, versioned); throws for a kind this port does not hold. */
  encode(credential: GrantCredential): Buffer;
  /** The stored bytes → the credential; an unknown version, provider, kind or shape throws. */
  decode(plain: Uint8Array): GrantCredential;
  accessToken(stored: StoredGrantAccess, opts: { forceRefresh: boolean }): Promise<AccessGrant>;
  revoke(credential: GrantCredential): Promise<GrantRevokeResult>;
}

/** This run lacks what a credential kind needs (e.g. GOOGLE_CLIENT_ID): not a provider failure. */
export class GrantNotConfiguredError extends Error {
  override readonly name = 'GrantNotConfiguredError';
  constructor(
    readonly provider: ProviderName,
    message: string,
  ) {
    super(message);
  }
}

const COMMON_FIELDS = new Set(['v', 'provider', 'kind', 'sandbox']);

/**
 * A GrantPort from a provider's consent flow and credential kinds. Stored document:
 * `{"v":1,"provider":…,["kind":…,]…fields,["sandbox":true]}` — `kind` is left out for
 * `delegated`, so rows written before kinds existed read unchanged and stay readable by them.
 */
export function composeGrantPort(input: {
  provider: ProviderName;
  displayName: string;
  consent: ConsentPort | undefined;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each kind narrows its own credential type
  kinds: ReadonlyArray<CredentialKindPort<any>>;
}): GrantPort {
  const { provider } = input;
  const byKind = new Map<string, CredentialKindPort>(input.kinds.map((k) => [k.kind, k]));
  const kindOf = (c: GrantCredential): CredentialKindPort => {
    if (c.provider !== provider) throw new Error(`a ${c.provider} credential given to the ${provider} grant port`);
    const k = byKind.get(c.kind);
    if (!k) throw new Error(`${provider} credential kind ${JSON.stringify(c.kind)} is not known to this run`);
    return k;
  };
  return {
    provider,
    displayName: input.displayName,
    consent: input.consent,
    kinds: [...byKind.keys()],
    encode(credential) {
      const k = kindOf(credential);
      // Round-trip through parse: what is stored is exactly what will read back.
      const fields = k.serialize(k.parse(k.serialize(credential), credential.sandbox ? { sandbox: true } : {}));
      const doc = { v: 1, provider, ...(credential.kind === DELEGATED ? {} : { kind: credential.kind }), ...fields, ...(credential.sandbox ? { sandbox: true } : {}) };
      return Buffer.from(JSON.stringify(doc), 'utf8');
    },
    decode(plain) {
      const doc: unknown = JSON.parse(Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength).toString('utf8'));
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('stored credential is not a JSON object');
      const d = doc as Record<string, unknown>;
      if (d.v !== 1) throw new Error('stored credential has an unknown version');
      if (d.provider !== provider) throw new Error('credential provider mismatch');
      if (d.sandbox !== undefined && d.sandbox !== true) throw new Error('stored credential has an invalid sandbox marker');
      const kind = d.kind === undefined ? DELEGATED : d.kind;
      if (typeof kind !== 'string' || (d.kind !== undefined && kind === DELEGATED)) throw new Error('stored credential has an invalid kind');
      const k = byKind.get(kind);
      if (!k) throw new Error(`${provider} credential kind ${JSON.stringify(kind)} is not known to this run`);
      const fields = Object.fromEntries(Object.entries(d).filter(([key]) => !COMMON_FIELDS.has(key)));
      return k.parse(fields, d.sandbox === true ? { sandbox: true } : {});
    },
    accessToken(stored, opts) {
      return kindOf(stored.credential).accessToken(stored, opts);
    },
    revoke(credential) {
      return kindOf(credential).revoke(credential);
    },
  };
}
