import { z } from 'zod';
import { GrantNotConfiguredError, type CredentialKindPort, type GrantCredential } from '../grant-port.js';
import { isDirectoryId, type MicrosoftAppTokenClient } from './microsoft-app-token.client.js';

/** The credential kind of a mailbox added to a Microsoft organization install. */
export const ORGANIZATION_KIND = 'organization';

/**
 * A mailbox added to an organization install: which directory's app-only token reads it. No
 * secret of the customer's is stored — the token comes from the app's own credential
 * (configuration) and the directory's admin consent; this document says only which directory and
 * which install the mailbox belongs to. Encrypted under the mailbox DEK like every credential.
 */
export interface MicrosoftOrganizationCredential extends GrantCredential {
  readonly provider: 'microsoft';
  readonly kind: typeof ORGANIZATION_KIND;
  /** The Entra tenant id the admin consented for. */
  readonly directoryId: string;
  readonly installId: string;
}

const fields = z.strictObject({ directoryId: z.string().refine(isDirectoryId, 'not an Entra tenant id'), installId: z.string().min(1).max(64) });

/**
 * `organization`: client-credential (app-only) tokens for the install's directory. Revoking is
 * not per mailbox: removing one mailbox deletes its subscription and purges it; the admin consent
 * stays until the organization removes the app (docs/connect.md, "Organization installs").
 */
export function microsoftOrganizationKind(deps: { client: Pick<MicrosoftAppTokenClient, 'acquire'> | undefined }): CredentialKindPort<MicrosoftOrganizationCredential> {
  return {
    kind: ORGANIZATION_KIND,
    parse(raw, common) {
      const f = fields.parse(raw);
      return { provider: 'microsoft', kind: ORGANIZATION_KIND, directoryId: f.directoryId, installId: f.installId, ...common };
    },
    serialize: (c) => ({ directoryId: c.directoryId, installId: c.installId }),
    async accessToken(stored, opts) {
      const client = deps.client;
      if (!client) throw new GrantNotConfiguredError('microsoft', 'Microsoft organization installs are not configured (MICROSOFT_CLIENT_ID)');
      const t = await client.acquire(stored.credential.directoryId, { forceRefresh: opts.forceRefresh });
      return { accessToken: t.accessToken, expiresAt: t.expiresAt };
    },
    revoke: () => Promise.resolve('not_supported'),
  };
}
