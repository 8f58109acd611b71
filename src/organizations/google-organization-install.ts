import { z } from 'zod';
import type { AuditService } from '../audit/audit.service.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { MAILBOX_ADDRESS_AAD } from '../mailboxes/message-content.js';
import type { Logger } from '../observability/logger.js';
import { GmailWatchAdapter } from '../providers/google/gmail-watch.adapter.js';
import { GOOGLE_DELEGATED_SCOPES, serviceAccountKeySchema, type ServiceAccountKey } from '../providers/google/google-delegated-access.js';
import type { GoogleEndpoints } from '../providers/google/google-endpoints.js';
import { GoogleOrganizationAccess, GOOGLE_BROAD_MAIL_SCOPE, serviceAccountKeyInput } from '../providers/google/google-organization-access.js';
import { GOOGLE_ORGANIZATION_KIND, type GoogleOrganizationCredential } from '../providers/google/google-organization-grant.js';
import { isProviderError } from '../providers/provider-error.js';
import { withTimeout } from '../providers/teardown-call.js';
import type { DbTransaction } from '../storage/database.js';
import type { GoogleOrganizationInstallRepository } from '../storage/google-organization-install.repository.js';
import { newId } from '../storage/ids.js';
import type { OrganizationInstallRecord } from '../storage/organization-install.repository.js';
import { OrganizationInstallError, organizationAddress, type ActorRef } from './organization-install.service.js';

/** AAD of `organization_installs.credentialEnc` (tenant DEK): the service-account key of a Google install. */
export const INSTALL_KEY_AAD = (installId: string) => ({ table: 'organization_installs', column: 'credentialEnc', rowId: installId }) as const;

/**
 * Always on a Google install: domain-wide delegation cannot be limited to some users, so the key
 * can obtain gmail.readonly + gmail.send tokens for EVERY user of the domain. The connector uses
 * it only for the mailboxes added by address; the warning stays so nobody forgets what the key is.
 */
export const WARNING_DOMAIN_WIDE = 'domain_wide_delegation';
/** The delegation grants more than gmail.readonly + gmail.send (e.g. https://mail.google.com/). */
export const WARNING_BROAD_SCOPES = 'broader_scopes_delegated';

const domainSchema = z
  .string()
  .trim()
  .toLowerCase()
  .max(253)
  .regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'not a domain name');

export interface GoogleInstallInput {
  /** The key file's JSON as Google gives it (an object, or the file's text). */
  serviceAccountKey: unknown;
  /** The Workspace domain whose mailboxes the install may add (default: verifyAddress's domain). */
  domain?: string | undefined;
  /** A user of the domain the delegation is proven with (a JWT grant with `sub` = it). */
  verifyAddress: string;
}

export interface GoogleOrganizationDeps {
  repo: GoogleOrganizationInstallRepository;
  dataKeys: Pick<DataKeyService, 'encryptFor' | 'decryptFor'>;
  audit: Pick<AuditService, 'record'>;
  logger: Logger;
  clock: () => Date;
  /** This run's Google endpoints; undefined when Google is not configured. */
  endpoints: GoogleEndpoints | undefined;
}

/**
 * The Google Workspace strategy of organization installs (issue 15 item 3): the helpdesk posts
 * the service-account key an administrator created and delegated domain-wide; the install is
 * active once a JWT grant for a user of the domain with exactly gmail.readonly + gmail.send is
 * issued. The key is stored only encrypted (tenant DEK) and never returned or logged; mailboxes
 * are added by address and each gets tokens signed with that key for its own address only.
 */
export class GoogleOrganizationInstalls {
  constructor(private readonly d: GoogleOrganizationDeps) {}

  #endpoints(): GoogleEndpoints {
    if (!this.d.endpoints) throw new OrganizationInstallError('provider_not_configured', 'Google is not configured on this connector');
    return this.d.endpoints;
  }

  /** Validates the key, proves the delegation and stores an active install; returns its id. */
  async install(tenantId: string, input: GoogleInstallInput, actor: ActorRef): Promise<string> {
    const proof = await this.#prove(input);
    const id = newId('organizationInstall');
    const credentialEnc = await this.d.dataKeys.encryptFor({ type: 'tenant', id: tenantId }, JSON.stringify(proof.key), INSTALL_KEY_AAD(id));
    const at = this.d.clock();
    const result = await this.d.repo.transaction(async (tx) => {
      const r = await this.d.repo.createActive(tx, { id, tenantId, domain: proof.domain, grantedPermissions: proof.granted, credentialEnc, at });
      if (r === 'ok') await this.#recordInstalled(tx, tenantId, id, proof, actor);
      return r;
    });
    if (result === 'duplicate') throw new OrganizationInstallError('bad_request', `${proof.domain} is already installed for this tenant: uninstall it first, or rotate its key`, 'already_installed');
    this.#warnBroad(proof, tenantId, id);
    return id;
  }

  /**
   * The hosted page's form (the Workspace administrator uploads the key themselves): the same
   * proof as `install`, then the pending install the link named becomes active with the key.
   * The domain is the one the helpdesk named when it started the install (stored on the pending row), if any.
   */
  async completePending(install: OrganizationInstallRecord, input: { serviceAccountKey: unknown; verifyAddress: string }, actor: ActorRef): Promise<'ok' | 'not_pending'> {
    const proof = await this.#prove({ ...input, domain: install.directoryId ?? undefined });
    const credentialEnc = await this.d.dataKeys.encryptFor({ type: 'tenant', id: install.tenantId }, JSON.stringify(proof.key), INSTALL_KEY_AAD(install.id));
    const at = this.d.clock();
    const result = await this.d.repo.transaction(async (tx) => {
      const r = await this.d.repo.activatePending(tx, { id: install.id, domain: proof.domain, grantedPermissions: proof.granted, credentialEnc, at });
      if (r === 'ok') await this.#recordInstalled(tx, install.tenantId, install.id, proof, actor);
      return r;
    });
    if (result === 'duplicate') throw new OrganizationInstallError('bad_request', `${proof.domain} is already installed for this helpdesk: nothing more to do here`, 'already_installed');
    if (result === 'ok') this.#warnBroad(proof, install.tenantId, install.id);
    return result;
  }

  /** A domain as an install stores it (lower case), or a refusal. */
  normalizeDomain(raw: string): string {
    const d = domainSchema.safeParse(raw);
    if (!d.success) throw new OrganizationInstallError('bad_request', 'domain is not a domain name', 'invalid_domain');
    return d.data;
  }

  /** The checks of an install, one place for the API and the hosted page: the key, the address, the delegation. */
  async #prove(input: GoogleInstallInput): Promise<{ key: ServiceAccountKey; domain: string; granted: string[]; broad: boolean }> {
    const endpoints = this.#endpoints();
    const key = this.#key(input.serviceAccountKey, endpoints);
    const verifyAddress = organizationAddress(input.verifyAddress, 'verifyAddress');
    const addressDomain = verifyAddress.slice(verifyAddress.lastIndexOf('@') + 1);
    const domain = input.domain !== undefined ? this.normalizeDomain(input.domain) : addressDomain;
    if (addressDomain !== domain) throw new OrganizationInstallError('bad_request', `verifyAddress must be an address of ${domain}`, 'address_outside_domain');

    const access = new GoogleOrganizationAccess(key, endpoints);
    const delegation = await this.#delegation(access, verifyAddress);
    try {
      const profile = (await access.profileAddress(verifyAddress)).toLowerCase();
      if (profile !== verifyAddress) throw new OrganizationInstallError('bad_request', 'Gmail answered for another address than verifyAddress (an alias?): give the user’s primary address', 'address_mismatch');
    } catch (err) {
      throw this.#refusal(err, 'install');
    }
    return { key, domain, ...delegation };
  }

  /** A delegated token for `subject` is issued: the permissions to record (the broad mail scope too when Google grants it). */
  async #delegation(access: GoogleOrganizationAccess, subject: string): Promise<{ granted: string[]; broad: boolean }> {
    let check;
    try {
      check = await access.verify(subject);
    } catch (err) {
      throw this.#refusal(err, 'install');
    }
    return { granted: [...check.granted, ...(check.broadScopeDelegated ? [GOOGLE_BROAD_MAIL_SCOPE] : [])], broad: check.broadScopeDelegated };
  }

  async #recordInstalled(tx: DbTransaction, tenantId: string, id: string, proof: { key: ServiceAccountKey; domain: string; granted: string[] }, actor: ActorRef): Promise<void> {
    const { key, domain, granted } = proof;
    await this.d.audit.record(
      {
        tenantId,
        ...actor,
        action: 'organization_install.installed',
        targetType: 'organization_install',
        targetId: id,
        // Identifies the key (Google shows both in the console); never the key itself.
        metadata: { provider: 'google', directoryId: domain, permissions: granted, serviceAccount: key.client_email, clientId: key.client_id, keyId: key.private_key_id },
      },
      tx,
    );
  }

  #warnBroad(proof: { broad: boolean }, tenantId: string, installId: string): void {
    if (proof.broad) this.d.logger.warn({ installId, tenantId }, 'google organization install: the delegation grants https://mail.google.com/ too');
  }

  /** Key rotation: a new key of the same service account replaces the stored one once it is proven. */
  async rotateKey(install: OrganizationInstallRecord, serviceAccountKey: unknown, verifyAddress: string, actor: ActorRef): Promise<void> {
    const endpoints = this.#endpoints();
    const key = this.#key(serviceAccountKey, endpoints);
    const old = await this.key(install.id);
    if (old && old.client_id !== key.client_id) throw new OrganizationInstallError('bad_request', 'the new key belongs to another service account: install that one separately', 'service_account_mismatch');
    const subject = this.#inDomain(install, verifyAddress);
    const { granted } = await this.#delegation(new GoogleOrganizationAccess(key, endpoints), subject);
    const credentialEnc = await this.d.dataKeys.encryptFor({ type: 'tenant', id: install.tenantId }, JSON.stringify(key), INSTALL_KEY_AAD(install.id));
    if (!(await this.d.repo.replaceCredential(install.id, credentialEnc, granted))) throw new OrganizationInstallError('bad_request', 'the organization install is not active', 'install_not_active');
    await this.d.audit.record({
      tenantId: install.tenantId,
      ...actor,
      action: 'organization_install.key_rotated',
      targetType: 'organization_install',
      targetId: install.id,
      metadata: { provider: 'google', clientId: key.client_id, keyId: key.private_key_id, previousKeyId: old?.private_key_id ?? null, permissions: granted },
    });
  }

  /**
   * Checks a mailbox to add: in the install's domain, a delegated token for it is issued, and its
   * Gmail profile is that address. Returns the credential document to store for it.
   */
  async mailboxCredential(install: OrganizationInstallRecord, rawAddress: string): Promise<{ address: string; credential: GoogleOrganizationCredential; grantedScopes: string[] }> {
    const endpoints = this.#endpoints();
    const address = this.#inDomain(install, rawAddress);
    const key = await this.key(install.id);
    if (!key) throw new OrganizationInstallError('bad_request', 'the organization install holds no key (uninstalled)', 'install_not_active');
    const access = new GoogleOrganizationAccess(key, endpoints);
    try {
      const profile = (await access.profileAddress(address)).toLowerCase();
      if (profile !== address) throw new OrganizationInstallError('bad_request', 'Gmail answered for another address (an alias or group?): add the user’s primary address', 'address_mismatch');
    } catch (err) {
      throw this.#refusal(err, 'mailbox');
    }
    return { address, credential: { provider: 'google', kind: GOOGLE_ORGANIZATION_KIND, installId: install.id, address }, grantedScopes: [...GOOGLE_DELEGATED_SCOPES] };
  }

  /** The install's key, decrypted; undefined when the install is not an active Google install with a key. */
  async key(installId: string, opts: { uninstalled?: boolean } = {}): Promise<ServiceAccountKey | undefined> {
    const row = await this.d.repo.credential(installId);
    const usable = row?.status === 'active' || (opts.uninstalled === true && row?.status === 'uninstalled');
    if (!row || row.provider !== 'google' || !usable || !row.credentialEnc) return undefined;
    const plain = await this.d.dataKeys.decryptFor({ type: 'tenant', id: row.tenantId }, row.credentialEnc, INSTALL_KEY_AAD(installId));
    return serviceAccountKeySchema.parse(JSON.parse(plain.toString('utf8')));
  }

  /**
   * Uninstall: each mailbox's Gmail watch is stopped (users.stop, best effort, bounded) while the
   * key still signs tokens, then the stored key is deleted. The service then purges the mailboxes;
   * their purge finds no key (`install_removed`) and records the watch as not needed.
   */
  async uninstall(installId: string): Promise<void> {
    const key = await this.key(installId, { uninstalled: true });
    if (key && this.d.endpoints) {
      const access = new GoogleOrganizationAccess(key, this.d.endpoints);
      for (const mb of await this.d.repo.liveMailboxes(installId)) {
        try {
          const address = (await this.d.dataKeys.decryptFor({ type: 'mailbox', id: mb.id }, mb.addressEnc, MAILBOX_ADDRESS_AAD(mb.id))).toString('utf8');
          await withTimeout(new GmailWatchAdapter({ endpoints: this.d.endpoints, accessToken: access.tokenSource(address) }).stop(), 10_000);
        } catch (err) {
          this.d.logger.warn({ installId, mailboxId: mb.id, kind: isProviderError(err) ? err.kind : 'error' }, 'google organization uninstall: users.stop failed (the watch expires within 7 days)');
        }
      }
    }
    await this.d.repo.forgetCredential(installId);
  }

  warnings(install: OrganizationInstallRecord): string[] {
    if (install.status !== 'active') return [];
    const extra = install.grantedPermissions.some((p) => !GOOGLE_DELEGATED_SCOPES.includes(p));
    return [WARNING_DOMAIN_WIDE, ...(extra ? [WARNING_BROAD_SCOPES] : [])];
  }

  #key(raw: unknown, endpoints: GoogleEndpoints): ServiceAccountKey {
    let value = raw;
    if (typeof raw === 'string') {
      try {
        value = JSON.parse(raw);
      } catch {
        throw new OrganizationInstallError('bad_request', 'serviceAccountKey is not the JSON key file Google gives', 'key_malformed');
      }
    }
    const r = serviceAccountKeyInput(endpoints).safeParse(value);
    if (!r.success) {
      // Field names only: a message must never carry part of the key.
      const fields = [...new Set(r.error.issues.map((i) => i.path.map(String).join('.') || '(file)'))].slice(0, 6).join(', ');
      throw new OrganizationInstallError('bad_request', `serviceAccountKey is not a service-account JSON key (check: ${fields})`, r.error.issues.some((i) => i.path[0] === 'token_uri') ? 'token_uri_not_allowed' : 'key_malformed');
    }
    return r.data;
  }

  #inDomain(install: OrganizationInstallRecord, raw: string): string {
    const address = organizationAddress(raw);
    if (address.slice(address.lastIndexOf('@') + 1) !== install.directoryId) {
      throw new OrganizationInstallError('bad_request', `the address is not in ${install.directoryId ?? 'the install’s domain'}, the domain of this install`, 'address_outside_domain');
    }
    return address;
  }

  /** Google's refusal as the API's error (details.reason); other failures go on as they are. */
  #refusal(err: unknown, what: 'install' | 'mailbox'): unknown {
    if (err instanceof OrganizationInstallError) return err;
    if (!isProviderError(err, 'auth_revoked')) return err;
    switch (err.reason) {
      case 'delegation_not_granted':
        return new OrganizationInstallError(
          'bad_request',
          'Google refused a token (unauthorized_client): in the Admin console (Security → API controls → Domain-wide delegation) authorize the service account’s client ID for exactly https://www.googleapis.com/auth/gmail.readonly and https://www.googleapis.com/auth/gmail.send',
          'delegation_not_granted',
        );
      case 'scopes_missing':
        return new OrganizationInstallError('bad_request', 'The domain-wide delegation lacks a scope: authorize both https://www.googleapis.com/auth/gmail.readonly and https://www.googleapis.com/auth/gmail.send for the client ID', 'scopes_missing');
      case 'user_not_found':
        return new OrganizationInstallError('bad_request', what === 'install' ? 'verifyAddress is not a user of the Workspace (invalid_grant)' : 'No Gmail user with this address in the Workspace (invalid_grant)', 'user_not_found');
      case 'key_invalid':
        return new OrganizationInstallError('bad_request', 'Google refused the service-account key (invalid_grant): it was deleted or disabled, or the file is not the downloaded key', 'key_invalid');
      case 'admin_policy_enforced':
        return new OrganizationInstallError(
          'bad_request',
          'Google refused a token (admin_policy_enforced): the Workspace restricts Gmail for third-party apps; in the Admin console (Security → API controls → App access control) mark the service account’s client ID as trusted',
          'admin_policy_enforced',
        );
      default:
        return new OrganizationInstallError('bad_request', 'Google refused the delegated access', err.reason ?? 'delegation_refused');
    }
  }
}
