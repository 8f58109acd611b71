import { createVerify, generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

/**
 * Service accounts and Google Workspace domain-wide delegation, as the stand-in's token endpoint
 * needs them (issue 15 item 3).
 *
 * A service account signs a JWT (RS256, `kid` = its key id) and trades it at the token endpoint
 * with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` (RFC 7523). With `sub` set, it
 * acts as that Workspace user — only if an administrator of the user's domain authorised the
 * service account's **client id** for every requested scope (Admin console → Security → API
 * controls → Domain-wide delegation). What Google answers (Google Identity "Using OAuth 2.0 for
 * Server to Server Applications", error table):
 *  - a bad signature: 400 `invalid_grant` "Invalid JWT Signature."
 *  - an unknown service account: 400 `invalid_grant` "Invalid grant: account not found"
 *  - `iat`/`exp` not a short-lived window around now: 400 `invalid_grant` "Invalid JWT: Token must
 *    be a short-lived token (60 minutes) and in a reasonable timeframe. …"
 *  - `sub` not a user: 400 `invalid_grant` "Invalid email or User ID"
 *  - no delegation, or a scope outside it: 401 `unauthorized_client` "Client is unauthorized to
 *    retrieve access tokens using this method, or client not authorized for any of the scopes
 *    requested."
 */

/** What `gcloud iam service-accounts keys create` writes (the fields the JWT client reads). */
export interface ServiceAccountKeyFile {
  type: 'service_account';
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  token_uri: string;
}

interface ServiceAccount {
  email: string;
  clientId: string;
  keys: Map<string, KeyObject>;
}

export type JwtGrantResult =
  | { ok: true; clientId: string; subject: string; scopes: string[] }
  | { ok: false; status: 400 | 401; error: 'invalid_grant' | 'unauthorized_client' | 'invalid_request'; description: string };

/** Google's token endpoint: the `aud` every service-account assertion names. */
export const GOOGLE_TOKEN_AUDIENCE = 'https://oauth2.googleapis.com/token';
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

const generate = promisify(generateKeyPair);
const UNAUTHORIZED =
  'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.';
const NOT_SHORT_LIVED =
  'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.';

export class ServiceAccountDirectory {
  private readonly accounts = new Map<string, ServiceAccount>();
  /** `${domain}\u0000${clientId}` → scopes the domain's administrator delegated. */
  private readonly delegations = new Map<string, Set<string>>();
  private counter = 0;

  constructor(
    private readonly now: () => number,
    /** The stand-in's own token URL: accepted as `aud` besides Google's. */
    private readonly tokenUrl: () => string,
    private readonly userExists: (email: string) => boolean,
  ) {}

  /** A new service account with one key; answers the key file JSON Google would let you download. */
  async create(opts: { name?: string; projectId?: string } = {}): Promise<ServiceAccountKeyFile> {
    const projectId = opts.projectId ?? 'sandbox-project';
    const name = opts.name ?? `connector-${++this.counter}`;
    const email = `${name}@${projectId}.iam.gserviceaccount.com`.toLowerCase();
    const existing = this.accounts.get(email);
    const account = existing ?? { email, clientId: String(100_000_000_000_000_000_000n + BigInt('0x' + randomBytes(8).toString('hex'))), keys: new Map() };
    const { privateKey, publicKey } = await generate('rsa', { modulusLength: 2048 });
    const keyId = randomBytes(20).toString('hex');
    account.keys.set(keyId, publicKey);
    this.accounts.set(email, account);
    return {
      type: 'service_account',
      project_id: projectId,
      private_key_id: keyId,
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: email,
      client_id: account.clientId,
      token_uri: GOOGLE_TOKEN_AUDIENCE,
    };
  }

  /** Deletes a key (the key file stops working at once). */
  deleteKey(email: string, keyId: string): void {
    this.accounts.get(email.toLowerCase())?.keys.delete(keyId);
  }

  /** The Workspace administrator of `domain` authorises `clientId` for exactly `scopes` (replacing earlier ones). */
  delegate(domain: string, clientId: string, scopes: string[]): void {
    this.delegations.set(`${domain.toLowerCase()}\u0000${clientId}`, new Set(scopes));
  }

  revokeDelegation(domain: string, clientId: string): void {
    this.delegations.delete(`${domain.toLowerCase()}\u0000${clientId}`);
  }

  delegationsList(): Array<{ domain: string; clientId: string; scopes: string[] }> {
    return [...this.delegations.entries()].map(([k, v]) => {
      const [domain, clientId] = k.split('\u0000') as [string, string];
      return { domain, clientId, scopes: [...v] };
    });
  }

  /** Checks a jwt-bearer assertion as Google's token endpoint does. */
  verify(assertion: string): JwtGrantResult {
    const parts = assertion.split('.');
    if (parts.length !== 3) return { ok: false, status: 400, error: 'invalid_grant', description: 'Invalid JWT: Malformed.' };
    let header: { alg?: unknown; kid?: unknown };
    let claims: { iss?: unknown; sub?: unknown; scope?: unknown; aud?: unknown; iat?: unknown; exp?: unknown };
    try {
      header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as typeof header;
      claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as typeof claims;
    } catch {
      return { ok: false, status: 400, error: 'invalid_grant', description: 'Invalid JWT: Malformed.' };
    }
    if (header.alg !== 'RS256') return { ok: false, status: 400, error: 'invalid_grant', description: 'Invalid JWT Signature.' };
    const account = typeof claims.iss === 'string' ? this.accounts.get(claims.iss.toLowerCase()) : undefined;
    if (!account) return { ok: false, status: 400, error: 'invalid_grant', description: 'Invalid grant: account not found' };
    // Without a kid Google tries the account's keys; with one, only that key.
    const keys = typeof header.kid === 'string' ? [account.keys.get(header.kid)].filter((k): k is KeyObject => k !== undefined) : [...account.keys.values()];
    const signed = `${parts[0]}.${parts[1]}`;
    const signature = Buffer.from(parts[2]!, 'base64url');
    if (!keys.some((key) => createVerify('RSA-SHA256').update(signed).verify(key, signature))) {
      return { ok: false, status: 400, error: 'invalid_grant', description: 'Invalid JWT Signature.' };
    }
    if (claims.aud !== GOOGLE_TOKEN_AUDIENCE && claims.aud !== this.tokenUrl()) {
      return { ok: false, status: 400, error: 'invalid_grant', description: 'Invalid JWT: Failed audience check.' };
    }
    const nowS = Math.floor(this.now() / 1000);
    const iat = typeof claims.iat === 'number' ? claims.iat : NaN;
    const exp = typeof claims.exp === 'number' ? claims.exp : NaN;
    if (!(exp > nowS && iat <= nowS + 300 && exp - iat <= 3600 && exp > iat)) return { ok: false, status: 400, error: 'invalid_grant', description: NOT_SHORT_LIVED };
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : [];
    if (scopes.length === 0) return { ok: false, status: 400, error: 'invalid_request', description: 'Invalid OAuth scope or ID token audience provided.' };
    if (claims.sub === undefined) {
      // The service account as itself: it has no mailbox, but the token is valid.
      return { ok: true, clientId: account.clientId, subject: account.email, scopes };
    }
    const subject = typeof claims.sub === 'string' ? claims.sub.toLowerCase() : '';
    const domain = subject.slice(subject.lastIndexOf('@') + 1);
    if (!subject.includes('@') || !this.userExists(subject)) return { ok: false, status: 400, error: 'invalid_grant', description: 'Invalid email or User ID' };
    const delegated = this.delegations.get(`${domain}\u0000${account.clientId}`);
    if (!delegated || !scopes.every((s) => delegated.has(s))) return { ok: false, status: 401, error: 'unauthorized_client', description: UNAUTHORIZED };
    return { ok: true, clientId: account.clientId, subject, scopes };
  }
}
