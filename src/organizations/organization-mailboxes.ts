import type { DataKeyService } from '../crypto/data-key.service.js';
import { MAILBOX_ADDRESS_AAD } from '../mailboxes/message-content.js';
import type { OrganizationMailboxBinding } from '../providers/microsoft/organization-mail.factory.js';
import type { OrganizationInstallRepository } from '../storage/organization-install.repository.js';

/**
 * Which mailboxes are organization-install mailboxes, and their address (the `/users/{address}`
 * every Graph call names). A mailbox's access kind and address never change, so the answer is
 * remembered per mailbox id (a bounded map; the address stays in memory like the access tokens).
 */
export class OrganizationMailboxes {
  readonly #known = new Map<string, OrganizationMailboxBinding | null>();

  constructor(
    private readonly repo: Pick<OrganizationInstallRepository, 'mailboxUnscoped'>,
    private readonly dataKeys: Pick<DataKeyService, 'decryptFor'>,
    private readonly max = 10_000,
  ) {}

  async binding(mailboxId: string): Promise<OrganizationMailboxBinding | undefined> {
    const cached = this.#known.get(mailboxId);
    if (cached !== undefined) return cached ?? undefined;
    const row = await this.repo.mailboxUnscoped(mailboxId);
    let binding: OrganizationMailboxBinding | null = null;
    if (row && row.access === 'organization' && row.organizationInstallId) {
      const address = (await this.dataKeys.decryptFor({ type: 'mailbox', id: row.id }, row.addressEnc, MAILBOX_ADDRESS_AAD(row.id))).toString('utf8');
      binding = { address };
    }
    if (row) {
      this.#known.set(mailboxId, binding);
      if (this.#known.size > this.max) this.#known.delete(this.#known.keys().next().value as string);
    }
    return binding ?? undefined;
  }
}
