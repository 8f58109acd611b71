import { z } from 'zod';
import type { AuditService } from '../audit/audit.service.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { hashState, newState, STATE_PATTERN } from '../crypto/oauth-state.js';
import type { Logger } from '../observability/logger.js';
import { isProviderError } from '../providers/provider-error.js';
import { GRAPH_APP_CONSENT_ROLES, type MicrosoftAppTokenClient } from '../providers/microsoft/microsoft-app-token.client.js';
import type { OrganizationSignInRepository } from '../storage/organization-signin.repository.js';

/** AAD of `organization_installs.signinEnc` (tenant DEK). */
export const SIGNIN_AAD = (installId: string) => ({ table: 'organization_installs', column: 'signinEnc', rowId: installId }) as const;

const secrets = z.strictObject({ codeVerifier: z.string().min(43).max(128), nonce: z.string().min(1).max(200) });

/** What the sign-in redirect carries (`code` + `state`, or `error` + `state`). */
export interface SignInRedirect {
  state?: string;
  code?: string;
  error?: string;
}

export type SignInOutcome =
  | { kind: 'not_signin' }
  | { kind: 'redirect'; url: string; installId: string }
  | { kind: 'failed'; installId: string | undefined; reason: string; message: string };

/**
 * Step 1 of a Microsoft organization install: the administrator signs in before the admin
 * consent, so the directory the install is bound to comes from a verified ID token (`tid`), not
 * from the unsigned `/adminconsent` redirect (whose `tenant` is a plain query parameter).
 *
 * 1. The hosted page starts a sign-in: authorization code + PKCE with `openid profile` on the
 *    `organizations` authority, a single-use `state` (stored as its SHA-256) and a nonce; the PKCE
 *    verifier and nonce are stored encrypted with the tenant DEK.
 * 2. The code comes back to the admin-consent redirect URI: MSAL redeems it (checks `state` and
 *    `nonce`), the ID token's `aud`, `tid` and `iss` (= this cloud's issuer for that `tid`) are
 *    checked, and the user must hold a role that can grant Microsoft Graph application
 *    permissions (`wids`: Global Administrator or Privileged Role Administrator).
 * 3. Only then the administrator goes to `/{tid}/v2.0/adminconsent` with a new single-use state;
 *    the consent redirect must name that same `tid` (else `tenant_mismatch`).
 */
export class MicrosoftAdminSignIn {
  constructor(
    private readonly d: {
      repo: OrganizationSignInRepository;
      dataKeys: Pick<DataKeyService, 'encryptFor' | 'decryptFor'>;
      tokens: Pick<MicrosoftAppTokenClient, 'signInSecrets' | 'adminSignInUrl' | 'redeemAdminSignIn' | 'adminConsentUrl'>;
      audit: Pick<AuditService, 'record'>;
      logger: Logger;
      clock: () => Date;
    },
  ) {}

  /** The directory the administrator's verified sign-in named; null before one completed. */
  verifiedDirectory(installId: string): Promise<string | null> {
    return this.d.repo.verifiedDirectory(installId);
  }

  /** A fresh sign-in for the pending install (the last one started wins); the URL of Microsoft's sign-in. */
  async begin(install: { id: string; tenantId: string }): Promise<string | undefined> {
    const { state, stateHash } = newState();
    const s = await this.d.tokens.signInSecrets();
    const signinEnc = await this.d.dataKeys.encryptFor({ type: 'tenant', id: install.tenantId }, JSON.stringify({ codeVerifier: s.codeVerifier, nonce: s.nonce }), SIGNIN_AAD(install.id));
    if (!(await this.d.repo.begin(install.id, { signinStateHash: stateHash, signinEnc }))) return undefined;
    return this.d.tokens.adminSignInUrl({ state, nonce: s.nonce, codeChallenge: s.codeChallenge });
  }

  /**
   * The sign-in redirect. `not_signin` when the state is not a pending sign-in's (it may be the
   * admin consent's); otherwise the administrator is sent on to the admin consent of their
   * verified directory, or the install fails.
   */
  async complete(query: SignInRedirect): Promise<SignInOutcome> {
    if (!query.state || !STATE_PATTERN.test(query.state)) return { kind: 'not_signin' };
    const signinStateHash = hashState(query.state);
    const pending = await this.d.repo.findPending(signinStateHash);
    if (!pending) return query.code ? { kind: 'failed', installId: undefined, reason: 'unknown_state', message: 'This sign-in link is unknown or was already used. Start the installation again from your helpdesk.' } : { kind: 'not_signin' };
    const installId = pending.installId;
    const fail = async (reason: string, message: string): Promise<SignInOutcome> => {
      await this.d.repo.clear(installId);
      return { kind: 'failed', installId, reason, message };
    };
    if (pending.consentExpiresAt && pending.consentExpiresAt <= this.d.clock()) return fail('expired', 'This consent link has expired. Start the installation again from your helpdesk.');
    if (query.error || !query.code) return fail(query.error === 'access_denied' ? 'signin_declined' : 'signin_error', 'The administrator did not sign in, so nothing was installed.');
    const raw = await this.d.dataKeys.decryptFor({ type: 'tenant', id: pending.tenantId }, pending.signinEnc, SIGNIN_AAD(installId));
    const { codeVerifier, nonce } = secrets.parse(JSON.parse(raw.toString('utf8')));
    let verified;
    try {
      verified = await this.d.tokens.redeemAdminSignIn({ code: query.code, codeVerifier, nonce, state: query.state, returnedState: query.state });
    } catch (err) {
      this.d.logger.warn({ installId, kind: isProviderError(err) ? err.kind : 'error', reason: isProviderError(err) ? err.reason : undefined }, 'organization install: administrator sign-in not verified');
      return fail('signin_not_verified', 'Microsoft did not confirm your sign-in. Start the installation again from your helpdesk.');
    }
    const roles = verified.roleTemplateIds;
    if (roles === undefined) {
      return fail('admin_role_unknown', 'Your sign-in did not say which administrator roles you hold, so the installation cannot continue. (The connector’s Microsoft app must send directory roles in its tokens; the connector’s operator can fix this.)');
    }
    if (!Object.values(GRAPH_APP_CONSENT_ROLES).some((r) => roles.includes(r))) {
      return fail('not_an_administrator', 'Only a Global Administrator or Privileged Role Administrator of your organization can grant these permissions. Ask one of them to open the link.');
    }
    const consent = newState();
    if (!(await this.d.repo.complete(installId, signinStateHash, { verifiedDirectoryId: verified.directoryId, consentStateHash: consent.stateHash }))) {
      return { kind: 'failed', installId: undefined, reason: 'unknown_state', message: 'This sign-in was already used. Start the installation again from your helpdesk.' };
    }
    await this.d.audit.record({
      tenantId: pending.tenantId,
      actorType: 'system',
      actorId: `organization_install:${installId}`,
      action: 'organization_install.admin_verified',
      targetType: 'organization_install',
      targetId: installId,
      metadata: { provider: 'microsoft', directoryId: verified.directoryId },
    });
    return { kind: 'redirect', installId, url: this.d.tokens.adminConsentUrl(consent.state, verified.directoryId) };
  }
}
