import express, { type Response, type Router } from 'express';
import { z } from 'zod';
import { humanScopeName, sandboxConsentHint } from '../consent-copy.js';
import { accessTokenHash, signJwt, type SigningKey } from './google-signing-key.js';
import {
  ACCESS_TOKEN_TTL_S,
  SIGN_IN_SCOPES,
  s256,
  type AccessGrant,
  type GoogleOAuthStore,
} from './google-oauth.store.js';
import { JWT_BEARER_GRANT, type ServiceAccountDirectory } from './google-service-accounts.js';

export const GOOGLE_ISSUER = 'https://accounts.google.com';

export const OAUTH_PATHS = {
  authorize: '/o/oauth2/v2/auth',
  decision: '/o/oauth2/v2/auth/decision',
  token: '/token',
  revoke: '/revoke',
  tokenInfo: '/tokeninfo',
  pemCerts: '/oauth2/v1/certs',
  jwkCerts: '/oauth2/v3/certs',
  userInfo: '/oauth2/v3/userinfo',
  openidConfiguration: '/.well-known/openid-configuration',
} as const;

export interface OAuthRouteDeps {
  store: GoogleOAuthStore;
  key: SigningKey;
  now: () => number;
  baseUrl: () => string;
  /** Consent granted for a user: make sure a mailbox exists for them. */
  onUserSeen: (email: string) => { sub: string };
  /** Service accounts and domain-wide delegation for the jwt-bearer grant (RFC 7523). */
  serviceAccounts?: ServiceAccountDirectory;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

function errorPage(res: Response, status: number, error: string, description: string): void {
  res
    .status(status)
    .type('html')
    .send(
      `<!doctype html><html><head><title>Error ${status}: ${escapeHtml(error)}</title></head><body>` +
        `<h1>Access blocked: authorization error</h1><p id="error">Error ${status}: ${escapeHtml(error)}</p>` +
        `<p>${escapeHtml(description)}</p></body></html>`,
    );
}

const authorizeQuery = z.object({
  client_id: z.string().min(1),
  redirect_uri: z.string().min(1),
  response_type: z.string().optional(),
  scope: z.string().optional(),
  state: z.string().optional(),
  access_type: z.enum(['online', 'offline']).optional(),
  prompt: z.string().optional(),
  login_hint: z.string().optional(),
  code_challenge: z.string().optional(),
  code_challenge_method: z.enum(['plain', 'S256']).optional(),
  include_granted_scopes: z.enum(['true', 'false']).optional(),
  nonce: z.string().optional(),
});

const decisionBody = z.object({
  txn: z.string().min(1),
  action: z.enum(['approve', 'deny']),
  email: z.string().optional(),
  scope: z.union([z.string(), z.array(z.string())]).optional(),
});

const SCOPE_RE = /^(openid|email|profile|https:\/\/(www\.googleapis\.com\/auth\/[\w./-]+|mail\.google\.com\/))$/;

function oauthError(res: Response, status: number, error: string, description: string): void {
  res.status(status).json({ error, error_description: description });
}

export function createGoogleOAuthRouter(deps: OAuthRouteDeps): Router {
  const { store, key, now } = deps;
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '64kb' });

  router.get(OAUTH_PATHS.authorize, (req, res) => {
    const parsed = authorizeQuery.safeParse(req.query);
    if (!parsed.success) return errorPage(res, 400, 'invalid_request', 'Required parameter is missing: client_id or redirect_uri');
    const q = parsed.data;
    const client = store.findClient(q.client_id);
    if (!client) return errorPage(res, 401, 'invalid_client', 'The OAuth client was not found.');
    // A bad redirect_uri is never redirected to (it could be an attacker's).
    if (!store.redirectAllowed(client, q.redirect_uri)) {
      return errorPage(res, 400, 'redirect_uri_mismatch', "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy.");
    }
    const back = new URL(q.redirect_uri);
    const redirectError = (error: string, description?: string) => {
      back.searchParams.set('error', error);
      if (description) back.searchParams.set('error_description', description);
      if (q.state !== undefined) back.searchParams.set('state', q.state);
      res.redirect(302, back.toString());
    };
    if (q.response_type !== 'code') return redirectError('unsupported_response_type');
    const scopes = [...new Set((q.scope ?? '').split(/[\s+]+/).filter(Boolean))];
    if (scopes.length === 0) return errorPage(res, 400, 'invalid_request', 'Missing required parameter: scope');
    const bad = scopes.find((s) => !SCOPE_RE.test(s));
    if (bad) return errorPage(res, 400, 'invalid_scope', 'Some requested scopes were invalid.');
    if (q.code_challenge_method && !q.code_challenge) {
      return errorPage(res, 400, 'invalid_request', 'Missing code_challenge');
    }
    const auth = store.startAuthorization({
      clientId: q.client_id,
      redirectUri: q.redirect_uri,
      scopes,
      state: q.state,
      accessType: q.access_type ?? 'online',
      prompt: (q.prompt ?? '').split(' ').filter(Boolean),
      loginHint: q.login_hint,
      codeChallenge: q.code_challenge,
      // RFC 7636 / Google: the method defaults to "plain" when a challenge is sent without one.
      codeChallengeMethod: q.code_challenge ? (q.code_challenge_method ?? 'plain') : undefined,
      includeGrantedScopes: q.include_granted_scopes === 'true',
      nonce: q.nonce,
    });
    const boxes = scopes
      .map(
        (s, i) =>
          `<li><label><input type="checkbox" id="scope-${i}" name="scope" value="${escapeHtml(s)}" checked${
            SIGN_IN_SCOPES.has(s) ? ' data-sign-in="true"' : ''
          }> ${escapeHtml(humanScopeName(s))} <small><code>${escapeHtml(s)}</code></small></label></li>`,
      )
      .join('');
    res
      .status(200)
      .type('html')
      .setHeader('cache-control', 'no-store')
      .send(
        `<!doctype html><html><head><meta charset="utf-8"><title>Sign in - Google Accounts (sandbox)</title></head><body>` +
          `<h1>Choose what ${escapeHtml(q.client_id)} can access</h1>` +
          `<p id="sandbox-hint">${escapeHtml(sandboxConsentHint('Google'))}</p>` +
          `<form id="consent" method="post" action="${OAUTH_PATHS.decision}">` +
          `<input type="hidden" name="txn" value="${escapeHtml(auth.txn)}">` +
          `<label>Account <input type="email" id="email" name="email" value="${escapeHtml(q.login_hint ?? '')}" required></label>` +
          `<ul id="scopes">${boxes}</ul>` +
          `<button type="submit" id="deny" name="action" value="deny">Cancel</button> ` +
          `<button type="submit" id="approve" name="action" value="approve">Continue</button>` +
          `</form></body></html>`,
      );
  });

  router.post(OAUTH_PATHS.decision, form, (req, res) => {
    const parsed = decisionBody.safeParse(req.body);
    if (!parsed.success) return errorPage(res, 400, 'invalid_request', 'Malformed consent form.');
    const auth = store.pending.get(parsed.data.txn);
    if (!auth) return errorPage(res, 400, 'invalid_request', 'The consent request expired. Start again.');
    const back = new URL(auth.redirectUri);
    if (parsed.data.action === 'deny') {
      store.pending.delete(auth.txn);
      back.searchParams.set('error', 'access_denied');
      if (auth.state !== undefined) back.searchParams.set('state', auth.state);
      return res.redirect(303, back.toString());
    }
    const email = z.email().safeParse((parsed.data.email ?? '').trim().toLowerCase());
    if (!email.success) return errorPage(res, 400, 'invalid_request', 'Enter a valid email address.');
    const ticked = new Set([parsed.data.scope ?? []].flat());
    // Granular consent lets users untick data scopes; sign-in scopes are always granted.
    const granted = auth.scopes.filter((s) => ticked.has(s) || SIGN_IN_SCOPES.has(s));
    deps.onUserSeen(email.data);
    const code = store.issueCode(auth, email.data, granted);
    back.searchParams.set('code', code.code);
    back.searchParams.set('scope', code.scopes.join(' '));
    if (auth.state !== undefined) back.searchParams.set('state', auth.state);
    res.redirect(303, back.toString());
  });

  const idToken = (clientId: string, email: string, access: AccessGrant, nonce: string | undefined): string => {
    const iat = Math.floor(now() / 1000);
    return signJwt(key, {
      iss: GOOGLE_ISSUER,
      azp: clientId,
      aud: clientId,
      sub: deps.onUserSeen(email).sub,
      email,
      email_verified: true,
      at_hash: accessTokenHash(access.token),
      ...(nonce ? { nonce } : {}),
      iat,
      exp: iat + 3600,
    });
  };
  const wantsIdToken = (scopes: string[]) =>
    scopes.includes('openid') || scopes.includes('email') || scopes.includes('https://www.googleapis.com/auth/userinfo.email');

  router.post(OAUTH_PATHS.token, form, express.json({ limit: '64kb' }), (req, res) => {
    res.setHeader('cache-control', 'no-cache, no-store, max-age=0, must-revalidate');
    const body = z.record(z.string(), z.unknown()).safeParse(req.body ?? {});
    const b = body.success ? body.data : {};
    const str = (k: string) => (typeof b[k] === 'string' ? (b[k] as string) : undefined);
    if (str('grant_type') === JWT_BEARER_GRANT && deps.serviceAccounts) {
      // A service account's signed assertion: no client id or secret (RFC 7523 section 2.1).
      const verdict = deps.serviceAccounts.verify(str('assertion') ?? '');
      if (!verdict.ok) return oauthError(res, verdict.status, verdict.error, verdict.description);
      const access = store.mintAccess(verdict.clientId, verdict.subject, verdict.scopes, undefined);
      return res.json({ access_token: access.token, expires_in: ACCESS_TOKEN_TTL_S, token_type: 'Bearer' });
    }
    let clientId = str('client_id');
    let secret = str('client_secret');
    const basic = /^Basic\s+(.+)$/i.exec(req.get('authorization') ?? '');
    if (basic) {
      const [id, sec] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      clientId = decodeURIComponent(id ?? '');
      secret = decodeURIComponent(sec ?? '');
    }
    if (!clientId) return oauthError(res, 400, 'invalid_request', 'Could not determine client ID from request.');
    if (!store.authenticateClient(clientId, secret)) return oauthError(res, 401, 'invalid_client', 'Unauthorized');
    const grantType = str('grant_type');
    if (grantType === 'authorization_code') {
      const code = store.codes.get(str('code') ?? '');
      if (!code || code.auth.clientId !== clientId) return oauthError(res, 400, 'invalid_grant', 'Malformed auth code.');
      if (code.used) {
        // Replay of an authorization code: refuse and revoke what it issued (RFC 6749 4.1.2).
        store.revokeIssuedFrom(code);
        return oauthError(res, 400, 'invalid_grant', 'Bad Request');
      }
      code.used = true;
      if (code.expiresAt <= now()) return oauthError(res, 400, 'invalid_grant', 'Bad Request');
      if (str('redirect_uri') !== code.auth.redirectUri) return oauthError(res, 400, 'redirect_uri_mismatch', 'Bad Request');
      if (code.auth.codeChallenge) {
        const verifier = str('code_verifier');
        if (!verifier) return oauthError(res, 400, 'invalid_grant', 'Missing code verifier.');
        const computed = code.auth.codeChallengeMethod === 'S256' ? s256(verifier) : verifier;
        if (computed !== code.auth.codeChallenge) return oauthError(res, 400, 'invalid_grant', 'Invalid code verifier.');
      }
      const refresh = code.issueRefreshToken ? store.mintRefresh(clientId, code.email, code.scopes, code.auth.nonce) : undefined;
      const access = store.mintAccess(clientId, code.email, code.scopes, refresh?.token);
      code.issued.push(access.token, ...(refresh ? [refresh.token] : []));
      return res.json({
        access_token: access.token,
        expires_in: ACCESS_TOKEN_TTL_S,
        ...(refresh ? { refresh_token: refresh.token } : {}),
        ...(refresh?.expiresAt !== undefined ? { refresh_token_expires_in: Math.floor((refresh.expiresAt - now()) / 1000) } : {}),
        scope: code.scopes.join(' '),
        token_type: 'Bearer',
        ...(wantsIdToken(code.scopes) ? { id_token: idToken(clientId, code.email, access, code.auth.nonce) } : {}),
      });
    }
    if (grantType === 'refresh_token') {
      const grant = store.validRefresh(str('refresh_token') ?? '');
      if (!grant || grant.clientId !== clientId) {
        return oauthError(res, 400, 'invalid_grant', 'Token has been expired or revoked.');
      }
      const access = store.mintAccess(clientId, grant.email, grant.scopes, grant.token);
      return res.json({
        access_token: access.token,
        expires_in: ACCESS_TOKEN_TTL_S,
        ...(grant.expiresAt !== undefined ? { refresh_token_expires_in: Math.floor((grant.expiresAt - now()) / 1000) } : {}),
        scope: grant.scopes.join(' '),
        token_type: 'Bearer',
        ...(wantsIdToken(grant.scopes) ? { id_token: idToken(clientId, grant.email, access, undefined) } : {}),
      });
    }
    return oauthError(res, 400, 'unsupported_grant_type', `Invalid grant_type: ${grantType ?? ''}`);
  });

  router.post(OAUTH_PATHS.revoke, form, (req, res) => {
    const fromBody = typeof req.body?.token === 'string' ? (req.body.token as string) : undefined;
    const tokenValue = typeof req.query.token === 'string' ? req.query.token : fromBody;
    if (!tokenValue || !store.revoke(tokenValue)) {
      return oauthError(res, 400, 'invalid_token', 'Token expired or revoked');
    }
    res.status(200).json({});
  });

  // google-auth-library's getTokenInfo POSTs a form; curl users GET with a query string.
  router.all(OAUTH_PATHS.tokenInfo, form, (req, res) => {
    const fromBody = typeof req.body?.access_token === 'string' ? (req.body.access_token as string) : undefined;
    const fromHeader = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
    const at = typeof req.query.access_token === 'string' ? req.query.access_token : (fromBody ?? fromHeader);
    const g = at ? store.validAccess(at) : undefined;
    if (!g) return oauthError(res, 400, 'invalid_token', 'Invalid Value');
    const exp = Math.floor(g.expiresAt / 1000);
    res.json({
      azp: g.clientId,
      aud: g.clientId,
      sub: deps.onUserSeen(g.email).sub,
      scope: g.scopes.join(' '),
      exp: String(exp),
      expires_in: String(Math.max(0, exp - Math.floor(now() / 1000))),
      email: g.email,
      email_verified: 'true',
      access_type: g.refreshToken ? 'offline' : 'online',
    });
  });

  router.get(OAUTH_PATHS.userInfo, (req, res) => {
    const bearer = /^Bearer\s+(.+)$/i.exec(req.get('authorization') ?? '')?.[1];
    const g = bearer ? store.validAccess(bearer) : undefined;
    if (!g) {
      res.setHeader('www-authenticate', 'Bearer realm="https://accounts.google.com/", error="invalid_token"');
      return oauthError(res, 401, 'invalid_request', 'Invalid Credentials');
    }
    res.json({ sub: deps.onUserSeen(g.email).sub, email: g.email, email_verified: true });
  });

  router.get(OAUTH_PATHS.pemCerts, (_req, res) => {
    // verifyIdToken caches by Cache-Control max-age, exactly as with Google's real cert endpoint.
    res.setHeader('cache-control', 'public, max-age=300, must-revalidate, no-transform');
    res.json({ [key.kid]: key.certificatePem });
  });
  router.get(OAUTH_PATHS.jwkCerts, (_req, res) => {
    res.setHeader('cache-control', 'public, max-age=300, must-revalidate, no-transform');
    res.json({ keys: [key.jwk] });
  });
  router.get(OAUTH_PATHS.openidConfiguration, (_req, res) => {
    const base = deps.baseUrl();
    res.json({
      issuer: GOOGLE_ISSUER,
      authorization_endpoint: base + OAUTH_PATHS.authorize,
      token_endpoint: base + OAUTH_PATHS.token,
      userinfo_endpoint: base + OAUTH_PATHS.userInfo,
      revocation_endpoint: base + OAUTH_PATHS.revoke,
      jwks_uri: base + OAUTH_PATHS.jwkCerts,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      scopes_supported: ['openid', 'email', 'profile'],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
      claims_supported: ['aud', 'email', 'email_verified', 'exp', 'iat', 'iss', 'sub', 'at_hash', 'azp', 'nonce'],
      code_challenge_methods_supported: ['plain', 'S256'],
      grant_types_supported: ['authorization_code', 'refresh_token', ...(deps.serviceAccounts ? [JWT_BEARER_GRANT] : [])],
    });
  });
  return router;
}
