import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { humanScopeName, sandboxConsentHint } from '../consent-copy.js';
import { base64url, headerValue, readBody, sendJson } from './sandbox-http.util.js';
import type { SandboxMailboxStore, SandboxUser } from './sandbox-mailbox.store.js';
import type { SandboxAppAccess } from './sandbox-app-access.js';

export interface SandboxClient {
  clientId: string;
  clientSecret: string;
  /** Exact redirect URIs allowed; undefined accepts any http(s) URI (handy for local demos). */
  redirectUris?: string[];
  /** Graph application permissions the app registration requests (admin consent grants them). Default Mail.Read, Mail.Send. */
  applicationPermissions?: string[];
  /** Public certificate (PEM) registered on the app: `client_assertion` signed with its key authenticates the app. */
  certificatePem?: string;
  /**
   * The app manifest's `groupMembershipClaims` (Token configuration → groups claim): `DirectoryRole`
   * (default here) puts the user's directory roles in ID tokens as `wids`; `None` leaves `wids` out.
   */
  groupMembershipClaims?: 'DirectoryRole' | 'None';
}

export interface AccessTokenGrant {
  userId: string;
  clientId: string;
  scopes: string[];
  expiresAt: number;
  /** An app-only token (client credentials): no user (`userId` is empty), the tenant's granted app roles. */
  app?: { roles: string[] };
}

interface RefreshGrant {
  userId: string;
  clientId: string;
  scopes: string[];
}

interface PendingAuthorization {
  clientId: string;
  redirectUri: string;
  scopes: string[];
  state: string | undefined;
  nonce: string | undefined;
  codeChallenge: string | undefined;
  codeChallengeMethod: string | undefined;
  loginHint: string | undefined;
  expiresAt: number;
}

interface AuthorizationCode {
  clientId: string;
  redirectUri: string;
  userId: string;
  scopes: string[];
  nonce: string | undefined;
  codeChallenge: string | undefined;
  codeChallengeMethod: string | undefined;
  expiresAt: number;
  redeemed: boolean;
}

export interface IdentityOptions {
  issuerOrigin: () => string;
  tenantId: string;
  accessTokenTtlSeconds: number;
  now: () => number;
  /** Sign-in of an address the stand-in does not know creates that mailbox (true) or fails (false). */
  autoCreateUsers: boolean;
  appAccess: SandboxAppAccess;
}

/**
 * Entra built-in role template ids the stand-in knows (`wids` claim). Only Global Administrator and
 * Privileged Role Administrator may grant Microsoft Graph application permissions (admin consent).
 */
export const SANDBOX_DIRECTORY_ROLES = {
  globalAdministrator: '62e90394-69f5-4237-9190-012177145e10',
  privilegedRoleAdministrator: 'e8611ab8-c189-46e8-94e1-60213ab1f814',
  applicationAdministrator: '9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3',
  cloudApplicationAdministrator: '158c047a-c907-4556-b7ef-446551a6b5f7',
} as const;
/** The "default user" role every member carries in `wids`. */
const DEFAULT_USER_ROLE = 'b79fbf4d-3ef9-4689-8143-76b194e85509';
const GRAPH_CONSENT_ROLES: readonly string[] = [SANDBOX_DIRECTORY_ROLES.globalAdministrator, SANDBOX_DIRECTORY_ROLES.privilegedRoleAdministrator];

export interface RevocationRecord {
  email: string;
  at: string;
  refreshTokensRevoked: number;
}

const authorizeQuery = z.object({
  client_id: z.string().min(1),
  redirect_uri: z.string().url(),
  response_type: z.literal('code'),
  scope: z.string().min(1),
  state: z.string().max(2048).optional(),
  nonce: z.string().max(512).optional(),
  code_challenge: z.string().min(43).max(128).optional(),
  code_challenge_method: z.enum(['S256', 'plain']).optional(),
  login_hint: z.string().max(320).optional(),
  response_mode: z.enum(['query', 'form_post', 'fragment']).optional(),
});

const decisionForm = z.object({
  txn: z.string().min(1),
  action: z.enum(['approve', 'deny']),
  email: z.string().optional(),
  scope: z.array(z.string()).default([]),
});

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/**
 * The Entra ID (v2.0 endpoint) half of the stand-in: discovery, JWKS, authorize with a consent
 * page, and the token endpoint. Shapes follow
 * https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow.
 */
export class SandboxIdentity {
  private readonly clients = new Map<string, SandboxClient>();
  private readonly pending = new Map<string, PendingAuthorization>();
  private readonly codes = new Map<string, AuthorizationCode>();
  private readonly refreshTokens = new Map<string, RefreshGrant>();
  readonly accessTokens = new Map<string, AccessTokenGrant>();
  readonly revocations: RevocationRecord[] = [];
  /** Authority metadata served (OpenID configuration and instance discovery GETs). */
  metadataRequests = 0;
  private readonly signingKey: KeyObject;
  private readonly jwk: Record<string, unknown>;
  private readonly kid = randomBytes(8).toString('hex');
  /** Directory roles (template ids) per user id: the `wids` claim of their ID tokens. */
  readonly #directoryRoles = new Map<string, string[]>();

  constructor(
    private readonly store: SandboxMailboxStore,
    private readonly options: IdentityOptions,
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.signingKey = privateKey;
    this.jwk = { ...publicKey.export({ format: 'jwk' }), kid: this.kid, use: 'sig', alg: 'RS256', kty: 'RSA' };
  }

  registerClient(client: SandboxClient): void {
    this.clients.set(client.clientId, client);
    // Registering a client again replaces its certificate (an app whose certificate was rotated in Entra).
    if (client.certificatePem) this.options.appAccess.registerCertificate(client.clientId, client.certificatePem, { replace: true });
  }

  /** Assigns Entra directory roles (template ids, SANDBOX_DIRECTORY_ROLES) to a user; `[]` takes them away. */
  setDirectoryRoles(email: string, roleTemplateIds: string[]): void {
    this.#directoryRoles.set(this.store.requireUser(email).id, [...new Set(roleTemplateIds)]);
  }

  /** Drops the app-only tokens of a client (after its admin consent was revoked). */
  expireAppTokens(clientId: string): void {
    for (const [at, g] of this.accessTokens) if (g.app && g.clientId === clientId) this.accessTokens.delete(at);
  }

  /** Revokes every refresh token of the user, like an admin deleting the oAuth2PermissionGrant. */
  revokeGrants(email: string, opts: { invalidateAccessTokens?: boolean } = {}): void {
    const user = this.store.requireUser(email);
    user.grantsRevoked = true;
    let n = 0;
    for (const [rt, g] of this.refreshTokens) if (g.userId === user.id) { this.refreshTokens.delete(rt); n += 1; }
    if (opts.invalidateAccessTokens) for (const [at, g] of this.accessTokens) if (g.userId === user.id) this.accessTokens.delete(at);
    this.revocations.push({ email: user.email, at: new Date(this.options.now()).toISOString(), refreshTokensRevoked: n });
  }

  /** Resolves a bearer token to its grant; undefined when unknown or expired. */
  resolveAccessToken(token: string): AccessTokenGrant | undefined {
    const g = this.accessTokens.get(token);
    if (!g || g.expiresAt <= this.options.now()) return undefined;
    return g;
  }

  /** Issues an access token directly (tests of Graph calls that do not need the OAuth dance). */
  issueAccessToken(email: string, scopes: string[] = ['Mail.ReadWrite', 'Mail.Send', 'User.Read'], clientId = 'sandbox-direct'): string {
    const user = this.store.createUser(email);
    const token = `eyJ0eXAiOiJKV1Qi.${randomBytes(32).toString('base64url')}`;
    this.accessTokens.set(token, { userId: user.id, clientId, scopes, expiresAt: this.options.now() + this.options.accessTokenTtlSeconds * 1000 });
    return token;
  }

  expireAccessTokens(email: string): void {
    const user = this.store.requireUser(email);
    for (const [at, g] of this.accessTokens) if (g.userId === user.id) this.accessTokens.delete(at);
  }

  private authority(tenant: string): string {
    return `${this.options.issuerOrigin()}/${tenant}`;
  }

  /** Returns true when the request was one of ours. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', this.options.issuerOrigin());
    const m = /^\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!m) return false;
    const tenant = decodeURIComponent(m[1] ?? '');
    const rest = m[2] ?? '';
    if (req.method === 'GET' && rest === 'v2.0/.well-known/openid-configuration') {
      this.metadataRequests++;
      sendJson(res, 200, this.discovery(tenant));
      return true;
    }
    if (req.method === 'GET' && rest === 'discovery/v2.0/keys') {
      sendJson(res, 200, { keys: [this.jwk] });
      return true;
    }
    if (req.method === 'GET' && rest === 'discovery/instance') {
      this.metadataRequests++;
      const host = new URL(this.options.issuerOrigin()).host;
      sendJson(res, 200, {
        tenant_discovery_endpoint: `${this.authority(tenant)}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
      });
      return true;
    }
    if (req.method === 'GET' && rest === 'oauth2/v2.0/authorize') {
      this.renderConsent(url, res);
      return true;
    }
    if (req.method === 'POST' && rest === 'oauth2/v2.0/authorize') {
      await this.decide(req, res);
      return true;
    }
    if (req.method === 'POST' && rest === 'oauth2/v2.0/token') {
      await this.token(req, res, tenant);
      return true;
    }
    if (req.method === 'GET' && rest === 'v2.0/adminconsent') {
      this.renderAdminConsent(url, res, tenant);
      return true;
    }
    if (req.method === 'POST' && rest === 'v2.0/adminconsent') {
      await this.decideAdminConsent(req, res);
      return true;
    }
    return false;
  }

  private discovery(tenant: string): Record<string, unknown> {
    const a = this.authority(tenant);
    return {
      token_endpoint: `${a}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${a}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${this.options.issuerOrigin()}/${this.options.tenantId}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${this.options.issuerOrigin()}/oidc/userinfo`,
      authorization_endpoint: `${a}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${a}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${a}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'oid', 'email'],
      kerberos_endpoint: `${a}/kerberos`,
      tenant_region_scope: 'EU',
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
      rbac_url: 'https://pas.windows.net',
    };
  }

  private errorPage(res: ServerResponse, status: number, code: string, description: string): void {
    const html = `<!doctype html><html><head><title>Sign in error</title></head><body><h1>${escapeHtml(code)}</h1><p id="error">${escapeHtml(description)}</p></body></html>`;
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  }

  private checkClientRedirect(clientId: string, redirectUri: string): string | undefined {
    const client = this.clients.get(clientId);
    if (!client) return `AADSTS700016: Application with identifier '${clientId}' was not found in the directory.`;
    if (client.redirectUris ? !client.redirectUris.includes(redirectUri) : !/^https?:$/.test(new URL(redirectUri).protocol)) {
      return "AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application.";
    }
    return undefined;
  }

  private renderConsent(url: URL, res: ServerResponse): void {
    const parsed = authorizeQuery.safeParse(Object.fromEntries(url.searchParams));
    if (!parsed.success) {
      this.errorPage(res, 400, 'invalid_request', `AADSTS900144: The request body must contain a valid authorization request (${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}).`);
      return;
    }
    const q = parsed.data;
    // An unknown client or redirect URI is shown, never redirected to (open-redirect protection).
    const bad = this.checkClientRedirect(q.client_id, q.redirect_uri);
    if (bad) {
      this.errorPage(res, 400, 'invalid_request', bad);
      return;
    }
    const txn = randomBytes(16).toString('base64url');
    const scopes = [...new Set(q.scope.split(/\s+/).filter(Boolean))];
    this.pending.set(txn, {
      clientId: q.client_id,
      redirectUri: q.redirect_uri,
      scopes,
      state: q.state,
      nonce: q.nonce,
      codeChallenge: q.code_challenge,
      codeChallengeMethod: q.code_challenge_method ?? (q.code_challenge ? 'plain' : undefined),
      loginHint: q.login_hint,
      expiresAt: this.options.now() + 10 * 60_000,
    });
    const boxes = scopes
      .map((s, i) => `<li><label><input type="checkbox" name="scope" id="scope-${i}" value="${escapeHtml(s)}" checked> ${escapeHtml(humanScopeName(s))} <small><code>${escapeHtml(s)}</code></small></label></li>`)
      .join('');
    const html = `<!doctype html><html><head><meta charset="utf-8"><title>Permissions requested</title></head><body>
<h1>Permissions requested</h1><p>Sandbox Microsoft 365 sign-in for application <b>${escapeHtml(q.client_id)}</b>.</p>
<p id="sandbox-hint">${escapeHtml(sandboxConsentHint('Microsoft'))}</p>
<form method="post" action="" id="consent">
<input type="hidden" name="txn" value="${txn}">
<label>Email <input type="email" id="email" name="email" value="${escapeHtml(q.login_hint ?? '')}"></label>
<ul>${boxes}</ul>
<button type="submit" id="approve" name="action" value="approve">Accept</button>
<button type="submit" id="deny" name="action" value="deny">Cancel</button>
</form></body></html>`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  }

  private async decide(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8'));
    const parsed = decisionForm.safeParse({ txn: form.get('txn') ?? '', action: form.get('action') ?? '', email: form.get('email') ?? undefined, scope: form.getAll('scope') });
    if (!parsed.success) return this.errorPage(res, 400, 'invalid_request', 'AADSTS90014: The consent form is incomplete.');
    const p = this.pending.get(parsed.data.txn);
    this.pending.delete(parsed.data.txn);
    if (!p || p.expiresAt <= this.options.now()) return this.errorPage(res, 400, 'invalid_request', 'AADSTS50058: The sign-in session expired. Start again.');
    const redirect = new URL(p.redirectUri);
    if (parsed.data.action === 'deny') {
      redirect.searchParams.set('error', 'access_denied');
      redirect.searchParams.set('error_subcode', 'cancel');
      redirect.searchParams.set('error_description', 'AADSTS65004: User declined to consent to access the app.');
      if (p.state !== undefined) redirect.searchParams.set('state', p.state);
      res.writeHead(302, { location: redirect.toString() });
      res.end();
      return;
    }
    const email = (parsed.data.email ?? p.loginHint ?? '').trim();
    if (!z.string().email().safeParse(email).success) return this.errorPage(res, 400, 'invalid_request', 'AADSTS50034: Enter a valid account address.');
    let user = this.store.findByEmail(email);
    if (!user) {
      if (!this.options.autoCreateUsers) return this.errorPage(res, 400, 'invalid_request', 'AADSTS50034: The user account does not exist in this directory.');
      user = this.store.createUser(email);
    }
    // Re-consent restores a revoked grant (the user approved the app again).
    user.grantsRevoked = false;
    user.refreshFailure = undefined;
    const granted = p.scopes.filter((s) => parsed.data.scope.includes(s));
    const code = `1.${randomBytes(48).toString('base64url')}`;
    this.codes.set(code, {
      clientId: p.clientId,
      redirectUri: p.redirectUri,
      userId: user.id,
      scopes: granted,
      nonce: p.nonce,
      codeChallenge: p.codeChallenge,
      codeChallengeMethod: p.codeChallengeMethod,
      expiresAt: this.options.now() + 10 * 60_000,
      redeemed: false,
    });
    redirect.searchParams.set('code', code);
    redirect.searchParams.set('client_info', base64url(JSON.stringify({ uid: user.id, utid: user.tenantId })));
    if (p.state !== undefined) redirect.searchParams.set('state', p.state);
    redirect.searchParams.set('session_state', randomUUID());
    res.writeHead(302, { location: redirect.toString() });
    res.end();
  }

  private tokenError(res: ServerResponse, status: number, error: string, aadsts: number, description: string, suberror?: string): void {
    const traceId = randomUUID();
    const correlationId = randomUUID();
    const timestamp = new Date(this.options.now()).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
    sendJson(res, status, {
      error,
      error_description: `AADSTS${aadsts}: ${description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
      error_codes: [aadsts],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `${this.options.issuerOrigin()}/error?code=${aadsts}`,
      ...(suberror ? { suberror } : {}),
    });
  }

  private async token(req: IncomingMessage, res: ServerResponse, tenant: string): Promise<void> {
    const form = new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8'));
    let clientId = form.get('client_id') ?? '';
    let secret = form.get('client_secret') ?? '';
    const basic = headerValue(req, 'authorization');
    if (basic?.startsWith('Basic ')) {
      const [id, sec] = Buffer.from(basic.slice(6), 'base64').toString('utf8').split(':');
      clientId = decodeURIComponent(id ?? '');
      secret = decodeURIComponent(sec ?? '');
    }
    const client = this.clients.get(clientId);
    if (!client) return this.tokenError(res, 400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory.`);
    const assertion = form.get('client_assertion');
    if (assertion !== null) {
      // private_key_jwt: a JWT signed with the key of a certificate registered on the app (RFC 7523).
      if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') return this.tokenError(res, 400, 'invalid_request', 50027, 'Invalid client_assertion_type.');
      const bad = this.options.appAccess.checkAssertion(clientId, assertion, `${this.authority(tenant)}/oauth2/v2.0/token`, this.options.now());
      if (bad) return this.tokenError(res, 401, 'invalid_client', 700027, `Client assertion failed signature validation. ${bad}`);
    } else if (!safeEqual(secret, client.clientSecret)) return this.tokenError(res, 401, 'invalid_client', 7000215, 'Invalid client secret provided.');
    const grantType = form.get('grant_type');
    if (grantType === 'authorization_code') return this.redeemCode(res, form, clientId);
    if (grantType === 'refresh_token') return this.redeemRefresh(res, form, clientId);
    if (grantType === 'client_credentials') return this.clientCredentials(res, form, clientId, tenant);
    return this.tokenError(res, 400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
  }

  /**
   * Client credentials (app-only): the authority must name the tenant (not common/organizations),
   * the scope must be `{resource}/.default`, and the tenant's administrator must have consented.
   * The access token carries the granted app roles (`roles` claim), like Entra's.
   */
  private clientCredentials(res: ServerResponse, form: URLSearchParams, clientId: string, tenant: string): void {
    if (['common', 'organizations', 'consumers'].includes(tenant.toLowerCase())) {
      return this.tokenError(res, 400, 'invalid_request', 90009, "Application is requesting a token for itself. This scenario is supported only if resource is specified using the GUID based App Identifier and a tenant is named ('common' is not allowed).");
    }
    if (tenant !== this.options.tenantId) return this.tokenError(res, 400, 'invalid_request', 90002, `Tenant '${tenant}' not found.`);
    const scopes = (form.get('scope') ?? '').split(/\s+/).filter(Boolean);
    if (scopes.length === 0 || !scopes.every((s) => s.endsWith('/.default'))) {
      return this.tokenError(res, 400, 'invalid_scope', 1002012, 'The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).');
    }
    const consent = this.options.appAccess.consents.get(clientId);
    if (!consent) return this.tokenError(res, 400, 'invalid_client', 7000229, `The client application ${clientId} is missing service principal in the tenant ${tenant}.`);
    const now = this.options.now();
    const ttl = this.options.accessTokenTtlSeconds;
    const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', kid: this.kid }));
    const iat = Math.floor(now / 1000);
    const payload = base64url(
      JSON.stringify({ aud: 'https://graph.microsoft.com', iss: `${this.options.issuerOrigin()}/${tenant}/`, iat, nbf: iat, exp: iat + ttl, appid: clientId, idtyp: 'app', roles: consent.roles, tid: tenant, uti: randomBytes(12).toString('base64url') }),
    );
    const accessToken = `${header}.${payload}.${sign('RSA-SHA256', Buffer.from(`${header}.${payload}`), this.signingKey).toString('base64url')}`;
    this.accessTokens.set(accessToken, { userId: '', clientId, scopes: [], expiresAt: now + ttl * 1000, app: { roles: [...consent.roles] } });
    sendJson(res, 200, { token_type: 'Bearer', expires_in: ttl, ext_expires_in: ttl, access_token: accessToken }, { 'cache-control': 'no-store', pragma: 'no-cache' });
  }

  /**
   * `GET /{tenant}/v2.0/adminconsent?client_id&redirect_uri&state&scope` (Microsoft identity
   * platform admin consent endpoint): an administrator approves the app's application permissions
   * for the whole tenant. The redirect carries `admin_consent=True&tenant=<id>&scope&state`, or
   * `error=access_denied`.
   */
  private renderAdminConsent(url: URL, res: ServerResponse, tenant: string): void {
    const q = Object.fromEntries(url.searchParams);
    // `/{tenant}/v2.0/adminconsent` for a named directory: one the stand-in does not hold is refused.
    if (!['common', 'organizations'].includes(tenant.toLowerCase()) && tenant.toLowerCase() !== this.options.tenantId.toLowerCase()) {
      return this.errorPage(res, 400, 'invalid_request', `AADSTS90002: Tenant '${tenant}' not found.`);
    }
    const clientId = q.client_id ?? '';
    const redirectUri = q.redirect_uri ?? '';
    if (!clientId || !z.string().url().safeParse(redirectUri).success) return this.errorPage(res, 400, 'invalid_request', 'AADSTS900144: The request must contain client_id and redirect_uri.');
    const bad = this.checkClientRedirect(clientId, redirectUri);
    if (bad) return this.errorPage(res, 400, 'invalid_request', bad);
    const roles = this.clients.get(clientId)?.applicationPermissions ?? ['Mail.Read', 'Mail.Send'];
    const txn = randomBytes(16).toString('base64url');
    this.pending.set(txn, { clientId, redirectUri, scopes: roles, state: q.state, nonce: undefined, codeChallenge: undefined, codeChallengeMethod: undefined, loginHint: undefined, expiresAt: this.options.now() + 10 * 60_000 });
    const items = roles.map((r) => `<li class="permission"><b>${escapeHtml(humanScopeName(r))}</b> <small><code>${escapeHtml(r)}</code> (application permission, every mailbox the tenant allows)</small></li>`).join('');
    const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Permissions requested — accept for your organization</title></head><body>
<main><h1>Permissions requested</h1><p>Application <b>${escapeHtml(clientId)}</b> asks for these application permissions for your whole organization:</p>
<ul>${items}</ul>
<p id="sandbox-hint">${escapeHtml(sandboxConsentHint('Microsoft'))}</p>
<form method="post" action="" id="consent">
<input type="hidden" name="txn" value="${txn}">
<label for="email">Administrator</label> <input type="email" id="email" name="email" autocomplete="username">
<button type="submit" id="approve" name="action" value="approve">Accept for your organization</button>
<button type="submit" id="deny" name="action" value="deny">Cancel</button>
</form></main></body></html>`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  }

  private async decideAdminConsent(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8'));
    const txn = form.get('txn') ?? '';
    const p = this.pending.get(txn);
    this.pending.delete(txn);
    if (!p || p.expiresAt <= this.options.now()) return this.errorPage(res, 400, 'invalid_request', 'AADSTS50058: The sign-in session expired. Start again.');
    const redirect = new URL(p.redirectUri);
    if (p.state !== undefined) redirect.searchParams.set('state', p.state);
    if (form.get('action') !== 'approve') {
      redirect.searchParams.set('error', 'access_denied');
      redirect.searchParams.set('error_description', 'AADSTS65004: User declined to consent to access the app.');
      res.writeHead(302, { location: redirect.toString() });
      res.end();
      return;
    }
    const email = (form.get('email') ?? '').trim();
    const admin = this.store.findByEmail(email);
    if (!admin || admin.sharedMembers) return this.errorPage(res, 400, 'invalid_request', 'AADSTS50034: The administrator account does not exist in this directory.');
    // Admin consent for Microsoft Graph application permissions needs one of these roles.
    if (!(this.#directoryRoles.get(admin.id) ?? []).some((r) => GRAPH_CONSENT_ROLES.includes(r))) {
      return this.errorPage(res, 403, 'access_denied', 'AADSTS90094: The grant requires admin permission.');
    }
    this.options.appAccess.grantConsent(p.clientId, p.scopes, admin.email, this.options.now());
    redirect.searchParams.set('admin_consent', 'True');
    redirect.searchParams.set('tenant', this.options.tenantId);
    redirect.searchParams.set('scope', 'https://graph.microsoft.com/.default');
    res.writeHead(302, { location: redirect.toString() });
    res.end();
  }

  private redeemCode(res: ServerResponse, form: URLSearchParams, clientId: string): void {
    const code = form.get('code') ?? '';
    const entry = this.codes.get(code);
    if (!entry || entry.clientId !== clientId) return this.tokenError(res, 400, 'invalid_grant', 9002313, 'Invalid request. The authorization code is malformed or invalid.');
    // Codes are single use; a replay is answered like Entra does (AADSTS54005).
    if (entry.redeemed) return this.tokenError(res, 400, 'invalid_grant', 54005, 'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.');
    entry.redeemed = true;
    if (entry.expiresAt <= this.options.now()) return this.tokenError(res, 400, 'invalid_grant', 70008, 'The provided authorization code or refresh token has expired due to inactivity.');
    if (form.get('redirect_uri') !== entry.redirectUri) return this.tokenError(res, 400, 'invalid_grant', 500112, 'The reply address does not match the reply address provided when requesting the authorization code.');
    const verifier = form.get('code_verifier');
    if (entry.codeChallenge !== undefined) {
      if (!verifier) return this.tokenError(res, 400, 'invalid_request', 501481, 'The Code_Verifier does not match the code_challenge supplied in the authorization request.');
      const computed = entry.codeChallengeMethod === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
      if (!safeEqual(computed, entry.codeChallenge)) return this.tokenError(res, 400, 'invalid_grant', 501481, 'The Code_Verifier does not match the code_challenge supplied in the authorization request.');
    } else if (verifier) {
      return this.tokenError(res, 400, 'invalid_request', 501491, 'Invalid size of Code_Verifier or the code_challenge was not supplied.');
    }
    const user = this.store.findById(entry.userId);
    if (!user) return this.tokenError(res, 400, 'invalid_grant', 50034, 'The user account does not exist in this directory.');
    this.issue(res, user, clientId, entry.scopes, entry.nonce);
  }

  private redeemRefresh(res: ServerResponse, form: URLSearchParams, clientId: string): void {
    const rt = form.get('refresh_token') ?? '';
    const grant = this.refreshTokens.get(rt);
    const user = grant ? this.store.findById(grant.userId) : undefined;
    if (user?.refreshFailure === 'interaction_required') {
      return this.tokenError(res, 400, 'interaction_required', 50076, 'Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.', 'basic_action');
    }
    if (!grant || !user || grant.clientId !== clientId || user.grantsRevoked) {
      // What Entra answers once the grant is gone (revokeSignInSessions / deleted permission grant).
      return this.tokenError(res, 400, 'invalid_grant', 50173, 'The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.', 'bad_token');
    }
    const requested = (form.get('scope') ?? '').split(/\s+/).filter(Boolean);
    const scopes = requested.length === 0 ? grant.scopes : requested.filter((s) => grant.scopes.includes(s) || ['openid', 'profile', 'offline_access'].includes(s));
    const missing = requested.filter((s) => !scopes.includes(s));
    if (missing.length > 0) return this.tokenError(res, 400, 'invalid_grant', 65001, 'The user or administrator has not consented to use the application.', 'consent_required');
    this.issue(res, user, clientId, grant.scopes.filter((s) => requested.length === 0 || scopes.includes(s)), undefined);
  }

  private issue(res: ServerResponse, user: SandboxUser, clientId: string, scopes: string[], nonce: string | undefined): void {
    const now = this.options.now();
    const ttl = this.options.accessTokenTtlSeconds;
    const accessToken = `eyJ0eXAiOiJKV1Qi.${randomBytes(32).toString('base64url')}`;
    const resourceScopes = scopes.filter((s) => !['openid', 'profile', 'offline_access', 'email'].includes(s));
    this.accessTokens.set(accessToken, { userId: user.id, clientId, scopes: resourceScopes, expiresAt: now + ttl * 1000 });
    const body: Record<string, unknown> = {
      token_type: 'Bearer',
      scope: scopes.join(' '),
      expires_in: ttl,
      ext_expires_in: ttl,
      access_token: accessToken,
    };
    // offline_access is what earns a refresh token; MSAL always asks for it.
    if (scopes.includes('offline_access')) {
      const rt = `1.A${randomBytes(48).toString('base64url')}`;
      this.refreshTokens.set(rt, { userId: user.id, clientId, scopes });
      body.refresh_token = rt;
    }
    if (scopes.includes('openid')) body.id_token = this.idToken(user, clientId, nonce, now);
    body.client_info = base64url(JSON.stringify({ uid: user.id, utid: user.tenantId }));
    sendJson(res, 200, body, { 'cache-control': 'no-store', pragma: 'no-cache' });
  }

  private idToken(user: SandboxUser, clientId: string, nonce: string | undefined, now: number): string {
    const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', kid: this.kid }));
    const iat = Math.floor(now / 1000);
    const payload = base64url(
      JSON.stringify({
        aud: clientId,
        iss: `${this.options.issuerOrigin()}/${user.tenantId}/v2.0`,
        iat,
        nbf: iat,
        exp: iat + 3600,
        name: user.displayName,
        oid: user.id,
        preferred_username: user.email,
        sub: base64url(createHash('sha256').update(`${user.id}:${clientId}`).digest()),
        tid: user.tenantId,
        uti: randomBytes(16).toString('base64url'),
        ver: '2.0',
        // As Entra sends it when the app's groups claim includes directory roles (manifest groupMembershipClaims).
        ...(this.clients.get(clientId)?.groupMembershipClaims === 'None' ? {} : { wids: [...(this.#directoryRoles.get(user.id) ?? []), DEFAULT_USER_ROLE] }),
        ...(nonce ? { nonce } : {}),
      }),
    );
    const signature = sign('RSA-SHA256', Buffer.from(`${header}.${payload}`), this.signingKey).toString('base64url');
    return `${header}.${payload}.${signature}`;
  }
}
