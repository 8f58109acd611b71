import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface RegisteredClient {
  clientId: string;
  /** When set, the token endpoint requires it (client_secret_post or HTTP Basic). */
  clientSecret?: string;
  redirectUris: string[];
  /**
   * "Testing" publishing status: refresh tokens expire (Google: 7 days unless the scopes are only
   * name/email/profile). Milliseconds.
   */
  testingRefreshTokenTtlMs?: number;
}

export interface PendingAuthorization {
  txn: string;
  clientId: string;
  redirectUri: string;
  scopes: string[];
  state: string | undefined;
  accessType: 'online' | 'offline';
  prompt: string[];
  loginHint: string | undefined;
  codeChallenge: string | undefined;
  codeChallengeMethod: 'plain' | 'S256' | undefined;
  includeGrantedScopes: boolean;
  nonce: string | undefined;
  createdAt: number;
}

export interface AuthorizationCode {
  code: string;
  auth: PendingAuthorization;
  email: string;
  scopes: string[];
  issueRefreshToken: boolean;
  expiresAt: number;
  used: boolean;
  /** Tokens minted from this code: revoked if the code is replayed (RFC 6749 4.1.2). */
  issued: string[];
}

export interface RefreshGrant {
  token: string;
  clientId: string;
  email: string;
  scopes: string[];
  nonce: string | undefined;
  revoked: boolean;
  expiresAt: number | undefined;
  createdAt: number;
}

export interface AccessGrant {
  token: string;
  clientId: string;
  email: string;
  scopes: string[];
  expiresAt: number;
  revoked: boolean;
  refreshToken: string | undefined;
}

export const SIGN_IN_SCOPES = new Set([
  'openid',
  'email',
  'profile',
  'https://www.googleapis.com/auth/userinfo.email',
  'https://www.googleapis.com/auth/userinfo.profile',
]);

export const CODE_TTL_MS = 10 * 60_000;
export const ACCESS_TOKEN_TTL_S = 3599;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

function token(prefix: string, bytes: number): string {
  return prefix + randomBytes(bytes).toString('base64url');
}

/** Authorization server state: clients, consent transactions, codes, refresh and access tokens. */
export class GoogleOAuthStore {
  readonly pending = new Map<string, PendingAuthorization>();
  readonly codes = new Map<string, AuthorizationCode>();
  readonly refreshTokens = new Map<string, RefreshGrant>();
  readonly accessTokens = new Map<string, AccessGrant>();
  /** (client, user) → scopes granted so far; drives "refresh token only on first consent". */
  private readonly consents = new Map<string, Set<string>>();
  readonly revokedLog: Array<{ kind: 'access' | 'refresh'; email: string; clientId: string; at: number }> = [];

  constructor(
    private readonly clients: RegisteredClient[] | undefined,
    private readonly now: () => number,
    /** "Testing" refresh-token lifetime for the accept-any-client mode. */
    private readonly defaultTestingTtlMs?: number,
  ) {}

  /** Undefined client list = accept any client id with a loopback redirect URI. */
  findClient(clientId: string): RegisteredClient | undefined {
    if (!this.clients) {
      return { clientId, redirectUris: [], ...(this.defaultTestingTtlMs !== undefined ? { testingRefreshTokenTtlMs: this.defaultTestingTtlMs } : {}) };
    }
    return this.clients.find((c) => c.clientId === clientId);
  }

  redirectAllowed(client: RegisteredClient, redirectUri: string): boolean {
    if (this.clients) return client.redirectUris.includes(redirectUri);
    try {
      const u = new URL(redirectUri);
      return (u.protocol === 'http:' || u.protocol === 'https:') && LOOPBACK_HOSTS.has(u.hostname);
    } catch {
      return false;
    }
  }

  authenticateClient(clientId: string, secret: string | undefined): boolean {
    const client = this.findClient(clientId);
    if (!client) return false;
    if (client.clientSecret === undefined) return true;
    return secret !== undefined && constantTimeEqual(secret, client.clientSecret);
  }

  startAuthorization(p: Omit<PendingAuthorization, 'txn' | 'createdAt'>): PendingAuthorization {
    const auth = { ...p, txn: token('', 24), createdAt: this.now() };
    this.pending.set(auth.txn, auth);
    return auth;
  }

  previouslyGranted(clientId: string, email: string): Set<string> {
    return this.consents.get(`${clientId}\u0000${email}`) ?? new Set();
  }

  issueCode(auth: PendingAuthorization, email: string, granted: string[]): AuthorizationCode {
    const key = `${auth.clientId}\u0000${email}`;
    const before = this.consents.get(key);
    const hasLiveRefresh = [...this.refreshTokens.values()].some(
      (r) => r.clientId === auth.clientId && r.email === email && !r.revoked,
    );
    let scopes = granted;
    if (auth.includeGrantedScopes && before) scopes = [...new Set([...before, ...granted])];
    this.consents.set(key, new Set([...(before ?? []), ...granted]));
    // Google returns a refresh token only for offline access on the first consent, or when
    // prompt=consent forces the consent screen again.
    const issueRefreshToken =
      auth.accessType === 'offline' && (auth.prompt.includes('consent') || !hasLiveRefresh);
    const code: AuthorizationCode = {
      code: token('4/0A', 48),
      auth,
      email,
      scopes,
      issueRefreshToken,
      expiresAt: this.now() + CODE_TTL_MS,
      used: false,
      issued: [],
    };
    this.codes.set(code.code, code);
    this.pending.delete(auth.txn);
    return code;
  }

  mintRefresh(clientId: string, email: string, scopes: string[], nonce: string | undefined): RefreshGrant {
    const client = this.findClient(clientId);
    const onlySignIn = scopes.every((s) => SIGN_IN_SCOPES.has(s));
    const ttl = client?.testingRefreshTokenTtlMs;
    const grant: RefreshGrant = {
      token: token('1//0', 64),
      clientId,
      email,
      scopes,
      nonce,
      revoked: false,
      expiresAt: ttl !== undefined && !onlySignIn ? this.now() + ttl : undefined,
      createdAt: this.now(),
    };
    this.refreshTokens.set(grant.token, grant);
    return grant;
  }

  mintAccess(clientId: string, email: string, scopes: string[], refreshToken: string | undefined): AccessGrant {
    const grant: AccessGrant = {
      token: token('ya29.a0', 96),
      clientId,
      email,
      scopes,
      expiresAt: this.now() + ACCESS_TOKEN_TTL_S * 1000,
      revoked: false,
      refreshToken,
    };
    this.accessTokens.set(grant.token, grant);
    return grant;
  }

  validAccess(tokenValue: string): AccessGrant | undefined {
    const g = this.accessTokens.get(tokenValue);
    if (!g || g.revoked || g.expiresAt <= this.now()) return undefined;
    return g;
  }

  validRefresh(tokenValue: string): RefreshGrant | undefined {
    const g = this.refreshTokens.get(tokenValue);
    if (!g || g.revoked) return undefined;
    if (g.expiresAt !== undefined && g.expiresAt <= this.now()) return undefined;
    return g;
  }

  revokeRefresh(tokenValue: string): void {
    const r = this.refreshTokens.get(tokenValue);
    if (!r || r.revoked) return;
    r.revoked = true;
    this.revokedLog.push({ kind: 'refresh', email: r.email, clientId: r.clientId, at: this.now() });
    for (const a of this.accessTokens.values()) {
      if (a.refreshToken === tokenValue) this.revokeAccessOnly(a);
    }
  }

  private revokeAccessOnly(a: AccessGrant): void {
    if (a.revoked) return;
    a.revoked = true;
    this.revokedLog.push({ kind: 'access', email: a.email, clientId: a.clientId, at: this.now() });
  }

  /** RFC 7009 revoke. Google: revoking an access token also revokes its refresh token. */
  revoke(tokenValue: string): boolean {
    const r = this.refreshTokens.get(tokenValue);
    if (r && !r.revoked) {
      this.revokeRefresh(tokenValue);
      return true;
    }
    const a = this.accessTokens.get(tokenValue);
    if (a && !a.revoked && a.expiresAt > this.now()) {
      this.revokeAccessOnly(a);
      if (a.refreshToken) this.revokeRefresh(a.refreshToken);
      return true;
    }
    return false;
  }

  /** The user removed the app in their Google account: every grant for it dies. */
  revokeUser(email: string, clientId?: string): void {
    for (const r of this.refreshTokens.values()) {
      if (r.email === email && (!clientId || r.clientId === clientId)) this.revokeRefresh(r.token);
    }
    for (const a of this.accessTokens.values()) {
      if (a.email === email && (!clientId || a.clientId === clientId)) this.revokeAccessOnly(a);
    }
    for (const key of this.consents.keys()) {
      const [c, e] = key.split('\u0000');
      if (e === email && (!clientId || c === clientId)) this.consents.delete(key);
    }
  }

  revokeIssuedFrom(code: AuthorizationCode): void {
    for (const t of code.issued) this.revoke(t);
  }
}

export function s256(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}
