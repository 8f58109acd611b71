import { z } from 'zod';
import type { AuditService } from '../audit/audit.service.js';
import type { BlindIndex } from '../crypto/blind-index.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { hashState, newState, STATE_PATTERN } from '../crypto/oauth-state.js';
import { MAILBOX_ADDRESS_AAD } from '../mailboxes/message-content.js';
import type { Logger } from '../observability/logger.js';
import type { GrantCredential } from '../providers/grant-port.js';
import { isProviderError, ProviderError } from '../providers/provider-error.js';
import { GraphAdapter } from '../providers/microsoft/graph.adapter.js';
import { isDirectoryId, ORGANIZATION_APP_ROLES, type MicrosoftAppTokenClient } from '../providers/microsoft/microsoft-app-token.client.js';
import type { MicrosoftEndpoints } from '../providers/microsoft/microsoft-endpoints.js';
import { ORGANIZATION_KIND, type MicrosoftOrganizationCredential } from '../providers/microsoft/microsoft-organization-grant.js';
import type { MicrosoftAdminSignIn } from './microsoft-admin-signin.js';
import type { OrganizationAccessWarnings } from './organization-access-warning.js';
import type { GoogleInstallInput, GoogleOrganizationInstalls } from './google-organization-install.js';
import type { DbTransaction } from '../storage/database.js';
import { newId } from '../storage/ids.js';
import type { AccessCheck, OrganizationInstallRecord, OrganizationInstallRepository } from '../storage/organization-install.repository.js';

/** AAD of `organization_installs.probeAddressEnc` (tenant DEK). */
export const PROBE_ADDRESS_AAD = (installId: string) => ({ table: 'organization_installs', column: 'probeAddressEnc', rowId: installId }) as const;

export type OrganizationInstallRefusal = 'not_found' | 'bad_request' | 'provider_not_configured';

/** A refusal the API answers with its catalogue code (error-mapper.ts). */
export class OrganizationInstallError extends Error {
  override readonly name = 'OrganizationInstallError';
  constructor(
    readonly code: OrganizationInstallRefusal,
    message: string,
    readonly reason?: string,
  ) {
    super(message);
  }
}

export interface OrganizationInstallView {
  id: string;
  object: 'organization_install';
  provider: 'microsoft' | 'google';
  status: OrganizationInstallRecord['status'];
  statusReason: string | null;
  directoryId: string | null;
  grantedPermissions: string[];
  mailboxCount: number;
  /** The last restriction probe: `unrestricted` means the app could read a mailbox it was not given. */
  accessCheck: AccessCheck;
  accessCheckedAt: string | null;
  warnings: string[];
  installedAt: string | null;
  uninstalledAt: string | null;
  createdAt: string;
}

export type ActorRef = { actorType: 'api_key' | 'ops' | 'system'; actorId: string };

export type CallbackOutcome =
  | { kind: 'installed'; install: OrganizationInstallView; tenantId: string }
  /** `tenantId`: the install's tenant when the redirect named one (its branding on the result page). */
  | { kind: 'failed'; message: string; reason: string; tenantId?: string }
  /** The administrator's sign-in was verified: on to Microsoft's admin consent for their directory. */
  | { kind: 'redirect'; url: string };

export interface OrganizationInstallDeps {
  repo: OrganizationInstallRepository;
  dataKeys: DataKeyService;
  blindIndex: Pick<BlindIndex, 'emailIndex'>;
  audit: Pick<AuditService, 'record'>;
  logger: Logger;
  clock: () => Date;
  /** Microsoft app-only tokens; undefined when Microsoft is not configured. */
  microsoft: { tokens: MicrosoftAppTokenClient; endpoints: MicrosoftEndpoints; adminSignIn: MicrosoftAdminSignIn } | undefined;
  /** Google Workspace installs (service account, domain-wide delegation); undefined when Google is not configured. */
  google?: GoogleOrganizationInstalls | undefined;
  /** The token vault's credential sealing (mailbox DEK, AAD mailboxes/credentialEnc). */
  sealCredential(mailboxId: string, credential: GrantCredential): Promise<{ credentialEnc: Buffer }>;
  /** Appends `mailbox.connected` in the transaction; returns the event id. */
  appendConnected(tx: DbTransaction, input: { tenantId: string; mailboxId: string; provider: 'microsoft' | 'google'; reconnected: boolean }): Promise<string>;
  eventsCommitted(ids: string[]): Promise<void>;
  /** Queues the first sync of a new mailbox. */
  enqueueFirstSync(mailboxId: string): Promise<void>;
  /** The customer disconnect of one mailbox (purge as today): its subscription goes, its data is purged. */
  startPurge(input: { tenantId: string; mailboxId: string; actor: ActorRef }): Promise<{ purgeId: string }>;
  /** The `organization_install.access_changed` webhook when a probe's verdict changes. */
  accessWarnings?: Pick<OrganizationAccessWarnings, 'afterProbe'>;
  /** `<PUBLIC_URL>`: the hosted consent page is under it. */
  publicUrl: string;
  consentTtlMinutes?: number;
}

const address = z.string().trim().toLowerCase().email().max(320);

/** An address an install is given (a mailbox to add, a probe, a verify address), lower case, or a refusal naming the field. */
export function organizationAddress(raw: string, field = 'address'): string {
  const r = address.safeParse(raw);
  if (!r.success) throw new OrganizationInstallError('bad_request', `${field} is not a valid email address`, 'invalid_address');
  return r.data;
}


/**
 * Organization installs (issue 15 items 2 and 5), Microsoft first: admin consent once for the
 * organization, then mailboxes added by address. The connector reads only mailboxes added here
 * (each is its own mailbox record, purged like any other); a probe of an address the app was NOT
 * given tells whether the organization restricted the app (Exchange application access policy /
 * RBAC for applications) — an app that can read it is reported as `unrestricted`.
 */
export class OrganizationInstallService {
  constructor(private readonly d: OrganizationInstallDeps) {}

  #microsoft(): NonNullable<OrganizationInstallDeps['microsoft']> {
    if (!this.d.microsoft) throw new OrganizationInstallError('provider_not_configured', 'Microsoft is not configured on this connector');
    return this.d.microsoft;
  }

  /** A pending install and the hosted consent page the organization's administrator opens. */
  async start(
    tenantId: string,
    input: { provider: 'microsoft'; probeAddress?: string } | { provider: 'google'; domain?: string | undefined },
    actor: ActorRef,
  ): Promise<{ install: OrganizationInstallView; consentUrl: string; expiresAt: Date }> {
    if (input.provider === 'google') return this.#startGoogle(tenantId, input.domain, actor);
    this.#microsoft();
    const id = newId('organizationInstall');
    const { state, stateHash } = newState();
    const expiresAt = new Date(this.d.clock().getTime() + (this.d.consentTtlMinutes ?? 60) * 60_000);
    const probe = input.probeAddress === undefined ? null : organizationAddress(input.probeAddress, 'probeAddress');
    const probeAddressEnc = probe ? await this.d.dataKeys.encryptFor({ type: 'tenant', id: tenantId }, probe, PROBE_ADDRESS_AAD(id)) : null;
    await this.d.repo.createPending({ id, tenantId, provider: input.provider, stateHash, returnUrl: null, consentExpiresAt: expiresAt, probeAddressEnc });
    await this.d.audit.record({ tenantId, ...actor, action: 'organization_install.started', targetType: 'organization_install', targetId: id, metadata: { provider: input.provider } });
    const consentUrl = `${this.d.publicUrl.replace(/\/+$/, '')}/organization-install/microsoft?state=${encodeURIComponent(state)}`;
    return { install: await this.#view((await this.d.repo.findForTenant(tenantId, id))!), consentUrl, expiresAt };
  }

  /**
   * Google without a key: a pending install and the hosted page where the Workspace administrator
   * uploads the service-account key themselves (the key never passes through the helpdesk).
   */
  async #startGoogle(tenantId: string, rawDomain: string | undefined, actor: ActorRef): Promise<{ install: OrganizationInstallView; consentUrl: string; expiresAt: Date }> {
    const google = this.#google();
    const domain = rawDomain === undefined ? null : google.normalizeDomain(rawDomain);
    const id = newId('organizationInstall');
    const { state, stateHash } = newState();
    const expiresAt = new Date(this.d.clock().getTime() + (this.d.consentTtlMinutes ?? 60) * 60_000);
    await this.d.repo.createPending({ id, tenantId, provider: 'google', stateHash, returnUrl: null, consentExpiresAt: expiresAt, probeAddressEnc: null, directoryId: domain });
    await this.d.audit.record({ tenantId, ...actor, action: 'organization_install.started', targetType: 'organization_install', targetId: id, metadata: { provider: 'google', hostedUpload: true } });
    const consentUrl = `${this.d.publicUrl.replace(/\/+$/, '')}/organization-install/google?state=${encodeURIComponent(state)}`;
    return { install: await this.#view((await this.d.repo.findForTenant(tenantId, id))!), consentUrl, expiresAt };
  }

  /** The pending Google install a hosted-page link names, while the link is valid. */
  async #pendingGoogle(state: string): Promise<OrganizationInstallRecord | undefined> {
    if (!STATE_PATTERN.test(state)) return undefined;
    const install = await this.d.repo.findByStateHash(hashState(state));
    if (!install || install.provider !== 'google' || install.status !== 'pending' || (install.consentExpiresAt && install.consentExpiresAt <= this.d.clock())) return undefined;
    return install;
  }

  /** The Google upload page: the tenant (branding) and the domain the helpdesk named, if any. */
  async googleUploadPage(state: string): Promise<{ tenantId: string; domain: string | null } | undefined> {
    const install = await this.#pendingGoogle(state);
    return install ? { tenantId: install.tenantId, domain: install.directoryId } : undefined;
  }

  /**
   * The Google upload form: the same checks as `POST /v1/organization-installs` with a key
   * (GoogleOrganizationInstalls). A refusal leaves the install pending (the administrator fixes the
   * delegation and tries again while the link is valid); success spends the link.
   */
  async completeGoogleUpload(
    state: string,
    input: { serviceAccountKey: unknown; verifyAddress: string },
  ): Promise<{ kind: 'installed'; install: OrganizationInstallView; tenantId: string } | { kind: 'refused'; reason: string; message: string; tenantId: string; domain: string | null } | { kind: 'closed' }> {
    const install = await this.#pendingGoogle(state);
    if (!install) return { kind: 'closed' };
    try {
      const r = await this.#google().completePending(install, input, { actorType: 'system', actorId: `organization_install:${install.id}` });
      if (r === 'not_pending') return { kind: 'closed' };
    } catch (err) {
      if (err instanceof OrganizationInstallError && err.code === 'bad_request') {
        return { kind: 'refused', reason: err.reason ?? 'refused', message: err.message, tenantId: install.tenantId, domain: install.directoryId };
      }
      if (isProviderError(err)) {
        this.d.logger.warn({ installId: install.id, kind: err.kind }, 'google organization upload: Google could not be asked');
        return { kind: 'refused', reason: 'provider_unavailable', message: 'Google could not be reached to check the key. Try again in a minute.', tenantId: install.tenantId, domain: install.directoryId };
      }
      throw err;
    }
    return { kind: 'installed', install: await this.#view((await this.d.repo.findByIdUnscoped(install.id))!), tenantId: install.tenantId };
  }

  /** A Google Workspace install: active at once when the key and its delegation are proven (google-organization-install.ts). */
  async installGoogle(tenantId: string, input: GoogleInstallInput, actor: ActorRef): Promise<OrganizationInstallView> {
    const id = await this.#google().install(tenantId, input, actor);
    return this.#view((await this.d.repo.findForTenant(tenantId, id))!);
  }

  /** Replaces a Google install's service-account key with a new key of the same service account, once proven. */
  async rotateGoogleKey(tenantId: string, installId: string, input: { serviceAccountKey: unknown; verifyAddress: string }, actor: ActorRef): Promise<OrganizationInstallView> {
    const install = await this.#requireActive(tenantId, installId);
    if (install.provider !== 'google') throw new OrganizationInstallError('bad_request', 'only a Google install has a service-account key', 'not_google');
    await this.#google().rotateKey(install, input.serviceAccountKey, input.verifyAddress, actor);
    return this.#view((await this.d.repo.findForTenant(tenantId, installId))!);
  }

  #google(): GoogleOrganizationInstalls {
    if (!this.d.google) throw new OrganizationInstallError('provider_not_configured', 'Google is not configured on this connector');
    return this.d.google;
  }

  /**
   * The hosted page: the pending install the state names, and where its Continue button goes —
   * the administrator's Microsoft sign-in (a fresh single-use sign-in per page view; the last wins).
   */
  async consentPage(state: string): Promise<{ continueUrl: string; tenantId: string } | undefined> {
    if (!STATE_PATTERN.test(state)) return undefined;
    const install = await this.d.repo.findByStateHash(hashState(state));
    if (!install || install.provider !== 'microsoft' || install.status !== 'pending' || (install.consentExpiresAt && install.consentExpiresAt <= this.d.clock())) return undefined;
    const continueUrl = await this.#microsoft().adminSignIn.begin(install);
    return continueUrl ? { continueUrl, tenantId: install.tenantId } : undefined;
  }

  /**
   * The redirect URI of both steps. Step 1 (`code`): the administrator's sign-in, verified by
   * MicrosoftAdminSignIn, then on to the admin consent. Step 2 (`admin_consent`): its `tenant` must
   * be the directory of the verified sign-in, and the install becomes active only when a
   * client-credential token for that directory is issued (proof the app's service principal is
   * there) and carries the application permissions an install needs.
   */
  async callback(query: { state?: string; code?: string; admin_consent?: string; tenant?: string; error?: string; error_description?: string }): Promise<CallbackOutcome> {
    // Step 1's redirect (the administrator's sign-in: `code` + the sign-in state) comes here too.
    if (this.d.microsoft) {
      const signIn = await this.d.microsoft.adminSignIn.complete(query);
      if (signIn.kind === 'redirect') return { kind: 'redirect', url: signIn.url };
      if (signIn.kind === 'failed') {
        const failed = signIn.installId ? await this.d.repo.findByIdUnscoped(signIn.installId) : null;
        return failed ? this.#fail(failed, signIn.reason, signIn.message) : { kind: 'failed', reason: signIn.reason, message: signIn.message };
      }
    }
    const install = query.state && STATE_PATTERN.test(query.state) ? await this.d.repo.findByStateHash(hashState(query.state)) : null;
    if (!install || install.provider !== 'microsoft' || install.status !== 'pending') return { kind: 'failed', reason: 'unknown_state', message: 'This consent link is unknown or was already used. Start the installation again from your helpdesk.' };
    if (install.consentExpiresAt && install.consentExpiresAt <= this.d.clock()) return this.#fail(install, 'expired', 'This consent link has expired. Start the installation again from your helpdesk.');
    if (query.error) return this.#fail(install, query.error === 'access_denied' ? 'consent_declined' : 'consent_error', 'The administrator did not grant the permissions, so nothing was installed.');
    if (query.admin_consent?.toLowerCase() !== 'true' || !query.tenant || !isDirectoryId(query.tenant)) return this.#fail(install, 'invalid_callback', 'Microsoft did not confirm the consent.');
    // The consent must be for the directory the administrator signed in to (verified ID token).
    const verified = await this.#microsoft().adminSignIn.verifiedDirectory(install.id);
    if (!verified) return this.#fail(install, 'admin_not_verified', 'The administrator did not sign in first. Start the installation again from your helpdesk.');
    if (query.tenant.toLowerCase() !== verified) return this.#fail(install, 'tenant_mismatch', 'The consent was given for another organization than the one you signed in to, so nothing was installed.');
    // An app's consent in a directory is not tied to one tenant of the connector: a directory
    // serves one tenant (its administrator signed in for that one).
    if (await this.d.repo.activeElsewhere(install.provider, verified, install.tenantId)) {
      return this.#fail(install, 'directory_installed_elsewhere', 'Your organization is already installed for another helpdesk account. Uninstall it there first, or contact support.');
    }
    let roles: string[];
    try {
      roles = (await this.#microsoft().tokens.acquire(verified, { forceRefresh: true })).roles;
    } catch (err) {
      this.d.logger.warn({ installId: install.id, kind: isProviderError(err) ? err.kind : 'error', reason: isProviderError(err) ? err.reason : undefined }, 'organization install: no app token after admin consent');
      return this.#fail(install, 'no_app_token', 'Microsoft did not issue the connector a token for your organization. Check that the consent was granted and try again.');
    }
    const missing = ORGANIZATION_APP_ROLES.filter((r) => !roles.includes(r));
    if (missing.length) return this.#fail(install, 'missing_permissions', `The consent did not grant ${missing.join(' and ')}; the installation needs both.`);
    const at = this.d.clock();
    const result = await this.d.repo.transaction(async (tx) => {
      const r = await this.d.repo.activate(tx, install.id, { directoryId: verified, grantedPermissions: roles, at });
      if (r === 'ok') {
        await this.d.audit.record(
          { tenantId: install.tenantId, actorType: 'system', actorId: `organization_install:${install.id}`, action: 'organization_install.installed', targetType: 'organization_install', targetId: install.id, metadata: { provider: install.provider, directoryId: verified, permissions: roles } },
          tx,
        );
      }
      return r;
    });
    if (result === 'duplicate') return this.#fail(install, 'already_installed', 'Your organization is already installed for this helpdesk.');
    if (result === 'not_pending') return { kind: 'failed', reason: 'unknown_state', message: 'This consent link was already used.' };
    const fresh = (await this.d.repo.findByIdUnscoped(install.id))!;
    if (fresh.probeAddressEnc) await this.#probe(fresh).catch((err: unknown) => this.d.logger.warn({ err, installId: install.id }, 'organization install: access probe failed'));
    return { kind: 'installed', install: await this.#view((await this.d.repo.findByIdUnscoped(install.id))!), tenantId: install.tenantId };
  }

  async #fail(install: OrganizationInstallRecord, reason: string, message: string): Promise<CallbackOutcome> {
    if (await this.d.repo.fail(install.id, reason)) {
      await this.d.audit.record({ tenantId: install.tenantId, actorType: 'system', actorId: `organization_install:${install.id}`, action: 'organization_install.failed', targetType: 'organization_install', targetId: install.id, metadata: { reason } });
    }
    return { kind: 'failed', reason, message, tenantId: install.tenantId };
  }

  async get(tenantId: string, id: string): Promise<OrganizationInstallView> {
    return this.#view(await this.#require(tenantId, id));
  }

  async list(tenantId: string, limit = 100): Promise<OrganizationInstallView[]> {
    return Promise.all((await this.d.repo.listForTenant(tenantId, limit)).map((i) => this.#view(i)));
  }

  /**
   * Adds a mailbox (user or shared) by address. The app must be able to read its inbox now
   * (Graph app-only); a mailbox the organization's access policy keeps the app out of is refused.
   */
  async addMailbox(tenantId: string, installId: string, rawAddress: string, actor: ActorRef): Promise<{ mailboxId: string }> {
    const install = await this.#requireActive(tenantId, installId);
    const { provider } = install;
    let mailboxAddress: string;
    let credential: GrantCredential;
    let grantedScopes = install.grantedPermissions;
    if (provider === 'google') {
      // In the install's domain, a delegated token issued for it, its Gmail profile is that address.
      ({ address: mailboxAddress, credential, grantedScopes } = await this.#google().mailboxCredential(install, rawAddress));
    } else {
      mailboxAddress = organizationAddress(rawAddress);
      const verdict = await this.#canRead(install.directoryId!, mailboxAddress);
      if (verdict === 'not_found') throw new OrganizationInstallError('bad_request', 'No mailbox with this address exists in the organization.', 'mailbox_not_found');
      if (verdict === 'denied') throw new OrganizationInstallError('bad_request', 'The organization does not let the app read this mailbox (application access policy). Add it to the policy’s group first.', 'mailbox_not_accessible');
      const microsoftCredential: MicrosoftOrganizationCredential = { provider: 'microsoft', kind: ORGANIZATION_KIND, directoryId: install.directoryId!, installId };
      credential = microsoftCredential;
    }
    const addressIndex = this.d.blindIndex.emailIndex(mailboxAddress);
    const existing = await this.d.repo.findByAddress(tenantId, provider, addressIndex);
    // The organization let the app in again: the same mailbox record goes back to active, with its mail.
    if (existing?.organizationInstallId === installId && existing.status === 'reauth_required') return this.#reactivate(tenantId, installId, existing.id, provider, credential, actor);
    const mailboxId = newId('mailbox');
    const { credentialEnc } = await this.d.sealCredential(mailboxId, credential);
    const addressEnc = await this.d.dataKeys.encryptFor({ type: 'mailbox', id: mailboxId }, mailboxAddress, MAILBOX_ADDRESS_AAD(mailboxId));
    let eventId: string | undefined;
    try {
      eventId = await this.d.repo.transaction(async (tx) => {
        const added = await this.d.repo.addMailbox(tx, { id: mailboxId, tenantId, provider, installId, addressEnc, addressIndex, credentialEnc, grantedScopes });
        if (!added) return undefined;
        const id = await this.d.appendConnected(tx, { tenantId, mailboxId, provider, reconnected: false });
        await this.d.audit.record(
          { tenantId, ...actor, action: 'organization_install.mailbox_added', targetType: 'mailbox', targetId: mailboxId, metadata: { organizationInstallId: installId, provider, access: 'organization' } },
          tx,
        );
        return id;
      });
    } catch (err) {
      await this.d.dataKeys.destroy({ type: 'mailbox', id: mailboxId }).catch(() => undefined);
      throw err;
    }
    if (eventId === undefined) {
      await this.d.dataKeys.destroy({ type: 'mailbox', id: mailboxId }).catch(() => undefined);
      throw new OrganizationInstallError('bad_request', 'This address is already a mailbox of this tenant (connected in another way, or added already). Disconnect it first.', 'mailbox_exists');
    }
    await this.d.eventsCommitted([eventId]);
    await this.d.enqueueFirstSync(mailboxId).catch((err: unknown) => this.d.logger.warn({ err, mailboxId }, 'enqueueing the first sync failed'));
    return { mailboxId };
  }

  async #reactivate(tenantId: string, installId: string, mailboxId: string, provider: 'microsoft' | 'google', credential: GrantCredential, actor: ActorRef): Promise<{ mailboxId: string }> {
    const { credentialEnc } = await this.d.sealCredential(mailboxId, credential);
    const eventId = await this.d.repo.transaction(async (tx) => {
      if (!(await this.d.repo.reactivateMailbox(tx, mailboxId, installId, credentialEnc))) return undefined;
      const id = await this.d.appendConnected(tx, { tenantId, mailboxId, provider, reconnected: true });
      await this.d.audit.record({ tenantId, ...actor, action: 'organization_install.mailbox_reactivated', targetType: 'mailbox', targetId: mailboxId, metadata: { organizationInstallId: installId } }, tx);
      return id;
    });
    if (eventId === undefined) throw new OrganizationInstallError('bad_request', 'This address is already a mailbox of this tenant. Disconnect it first.', 'mailbox_exists');
    await this.d.eventsCommitted([eventId]);
    await this.d.enqueueFirstSync(mailboxId).catch((err: unknown) => this.d.logger.warn({ err, mailboxId }, 'enqueueing the first sync failed'));
    return { mailboxId };
  }

  /** Removes one mailbox from the install: its subscription is deleted and it is purged as today. */
  async removeMailbox(tenantId: string, installId: string, mailboxId: string, actor: ActorRef): Promise<{ purgeId: string }> {
    await this.#require(tenantId, installId);
    const row = await this.d.repo.mailboxUnscoped(mailboxId);
    if (!row || row.tenantId !== tenantId || row.organizationInstallId !== installId) throw new OrganizationInstallError('not_found', 'mailbox not found in this organization install');
    const purge = await this.d.startPurge({ tenantId, mailboxId, actor });
    await this.d.audit.record({ tenantId, ...actor, action: 'organization_install.mailbox_removed', targetType: 'mailbox', targetId: mailboxId, metadata: { organizationInstallId: installId, purgeId: purge.purgeId } });
    return purge;
  }

  /** Uninstall: the install ends and every one of its mailboxes is purged (each with its own receipt). */
  async uninstall(tenantId: string, installId: string, actor: ActorRef): Promise<{ purgeIds: string[] }> {
    const install = await this.#require(tenantId, installId);
    if (install.status !== 'uninstalled') {
      await this.d.repo.transaction(async (tx) => {
        if (await this.d.repo.markUninstalled(tx, installId, this.d.clock())) {
          await this.d.audit.record({ tenantId, ...actor, action: 'organization_install.uninstalled', targetType: 'organization_install', targetId: installId, metadata: { provider: install.provider } }, tx);
        }
      });
    }
    // Google: each watch is stopped while the key works, then the key is deleted (no token can be signed any more).
    if (install.provider === 'google') await this.#google().uninstall(installId);
    const purgeIds: string[] = [];
    for (const mb of await this.d.repo.liveMailboxes(installId)) {
      const p = await this.d.startPurge({ tenantId, mailboxId: mb.id, actor });
      await this.d.audit.record({ tenantId, ...actor, action: 'organization_install.mailbox_removed', targetType: 'mailbox', targetId: mb.id, metadata: { organizationInstallId: installId, purgeId: p.purgeId, uninstall: true } });
      purgeIds.push(p.purgeId);
    }
    return { purgeIds };
  }

  /**
   * The restriction probe: tries to read the inbox folder (metadata only, no message) of an
   * address of the organization that was NOT added. Readable → `unrestricted` (the app can read
   * mailboxes it was not given: the organization should apply an application access policy);
   * 403 → `restricted`. `probeAddress` replaces the stored one.
   */
  async checkAccess(tenantId: string, installId: string, probeAddress: string | undefined, actor: ActorRef): Promise<OrganizationInstallView> {
    let install = await this.#requireActive(tenantId, installId);
    if (install.provider === 'google') throw new OrganizationInstallError('bad_request', 'A Google install cannot be restricted to some users: domain-wide delegation reaches every user of the domain (see the install’s warnings)', 'not_supported_for_google');
    if (probeAddress !== undefined) {
      const probe = organizationAddress(probeAddress, 'probeAddress');
      await this.d.repo.setProbeAddress(installId, await this.d.dataKeys.encryptFor({ type: 'tenant', id: tenantId }, probe, PROBE_ADDRESS_AAD(installId)));
      install = (await this.d.repo.findForTenant(tenantId, installId))!;
    }
    if (!install.probeAddressEnc) throw new OrganizationInstallError('bad_request', 'Name a probe address: a mailbox of the organization the app must not be able to read.', 'probe_address_required');
    await this.#probe(install, actor);
    return this.#view((await this.d.repo.findForTenant(tenantId, installId))!);
  }

  /**
   * The daily job: probes every active install that has a probe address, so an organization that
   * drops its access policy later is noticed (warning on the install, audit entry, log line).
   */
  async recheckAll(limit = 1000): Promise<{ checked: number; unrestricted: number }> {
    let unrestricted = 0;
    const installs = await this.d.repo.activeWithProbe(limit);
    for (const install of installs) {
      try {
        if ((await this.#probe(install)) === 'unrestricted') unrestricted += 1;
      } catch (err) {
        this.d.logger.warn({ err, installId: install.id }, 'organization install: access probe failed');
      }
    }
    return { checked: installs.length, unrestricted };
  }

  async #probe(install: OrganizationInstallRecord, actor: ActorRef = { actorType: 'system', actorId: `organization_install:${install.id}` }): Promise<AccessCheck> {
    const probe = (await this.d.dataKeys.decryptFor({ type: 'tenant', id: install.tenantId }, install.probeAddressEnc!, PROBE_ADDRESS_AAD(install.id))).toString('utf8');
    let verdict: AccessCheck;
    try {
      const r = await this.#canRead(install.directoryId!, probe);
      verdict = r === 'readable' ? 'unrestricted' : r === 'denied' ? 'restricted' : 'failed';
    } catch {
      verdict = 'failed';
    }
    await this.d.repo.setAccessCheck(install.id, verdict, this.d.clock());
    await this.d.audit.record({ tenantId: install.tenantId, ...actor, action: 'organization_install.access_checked', targetType: 'organization_install', targetId: install.id, metadata: { verdict } });
    if (verdict === 'unrestricted') this.d.logger.warn({ installId: install.id, tenantId: install.tenantId }, 'organization install: the app can read a mailbox it was not given (no application access policy)');
    await this.d.accessWarnings?.afterProbe(install, verdict).catch((err: unknown) => this.d.logger.warn({ err, installId: install.id }, 'organization install: the access_changed event was not recorded'));
    return verdict;
  }

  /** Reads the inbox folder's metadata of `mailboxAddress` with the directory's app-only token. */
  async #canRead(directoryId: string, mailboxAddress: string): Promise<'readable' | 'denied' | 'not_found'> {
    const m = this.#microsoft();
    const graph = new GraphAdapter({ endpoints: m.endpoints, accessToken: async () => (await m.tokens.acquire(directoryId)).accessToken, sharedMailbox: mailboxAddress, appOnly: true, runner: { maxRetries: 2 } });
    try {
      await graph.checkMailboxAccess();
      return 'readable';
    } catch (err) {
      if (err instanceof ProviderError && err.kind === 'not_found') return 'not_found';
      if (err instanceof ProviderError && err.status === 403) return 'denied';
      throw err;
    }
  }

  async #require(tenantId: string, id: string): Promise<OrganizationInstallRecord> {
    const install = await this.d.repo.findForTenant(tenantId, id);
    if (!install) throw new OrganizationInstallError('not_found', 'organization install not found');
    return install;
  }

  async #requireActive(tenantId: string, id: string): Promise<OrganizationInstallRecord> {
    const install = await this.#require(tenantId, id);
    if (install.status !== 'active' || !install.directoryId) throw new OrganizationInstallError('bad_request', `the organization install is ${install.status}; mailboxes can be added to an active install only`, 'install_not_active');
    return install;
  }

  async #view(i: OrganizationInstallRecord): Promise<OrganizationInstallView> {
    const warnings: string[] = [];
    if (i.status === 'active' && i.accessCheck === 'unrestricted') warnings.push('app_access_unrestricted');
    if (i.status === 'active' && !i.probeAddressEnc && i.provider !== 'google') warnings.push('access_not_checked');
    if (i.provider === 'google' && this.d.google) warnings.push(...this.d.google.warnings(i));
    return {
      id: i.id,
      object: 'organization_install',
      provider: i.provider,
      status: i.status,
      statusReason: i.statusReason,
      directoryId: i.directoryId,
      grantedPermissions: i.grantedPermissions,
      mailboxCount: await this.d.repo.countMailboxes(i.id),
      accessCheck: i.accessCheck,
      accessCheckedAt: i.accessCheckedAt?.toISOString() ?? null,
      warnings,
      installedAt: i.installedAt?.toISOString() ?? null,
      uninstalledAt: i.uninstalledAt?.toISOString() ?? null,
      createdAt: i.createdAt.toISOString(),
    };
  }
}
