import type { PrismaClient } from './database.js';

/** A pending install's administrator sign-in (Microsoft organization installs, step 1). */
export interface PendingSignIn {
  installId: string;
  tenantId: string;
  consentExpiresAt: Date | null;
  /** PKCE verifier and nonce, encrypted with the tenant DEK. */
  signinEnc: Uint8Array;
}

/**
 * The administrator sign-in columns of `organization_installs` (migration
 * 20261206110000_organization_admin_signin): the single-use sign-in state (as its SHA-256), the
 * encrypted PKCE verifier + nonce, and the directory the verified ID token named.
 */
export class OrganizationSignInRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** Starts (or restarts: the last one wins) the sign-in of a pending install. False when it is not pending. */
  async begin(installId: string, input: { signinStateHash: string; signinEnc: Uint8Array }): Promise<boolean> {
    const r = await this.prisma.organizationInstall.updateMany({
      where: { id: installId, status: 'pending' },
      data: { signinStateHash: input.signinStateHash, signinEnc: Buffer.from(input.signinEnc) },
    });
    return r.count === 1;
  }

  async findPending(signinStateHash: string): Promise<PendingSignIn | null> {
    const row = await this.prisma.organizationInstall.findUnique({ where: { signinStateHash }, select: { id: true, tenantId: true, status: true, consentExpiresAt: true, signinEnc: true } });
    if (!row || row.status !== 'pending' || !row.signinEnc) return null;
    return { installId: row.id, tenantId: row.tenantId, consentExpiresAt: row.consentExpiresAt, signinEnc: row.signinEnc };
  }

  /**
   * The sign-in is spent (its state and secrets cleared); the install records the verified
   * directory and the new single-use state of the admin consent that follows. False when another
   * request completed this sign-in first.
   */
  async complete(installId: string, signinStateHash: string, input: { verifiedDirectoryId: string; consentStateHash: string }): Promise<boolean> {
    const r = await this.prisma.organizationInstall.updateMany({
      where: { id: installId, signinStateHash, status: 'pending' },
      data: { signinStateHash: null, signinEnc: null, verifiedDirectoryId: input.verifiedDirectoryId, stateHash: input.consentStateHash },
    });
    return r.count === 1;
  }

  /** Clears a sign-in that ended (failed or refused): nothing of it stays. */
  async clear(installId: string): Promise<void> {
    await this.prisma.organizationInstall.updateMany({ where: { id: installId }, data: { signinStateHash: null, signinEnc: null } });
  }

  /** The directory the administrator's verified sign-in named; null before a sign-in completed. */
  async verifiedDirectory(installId: string): Promise<string | null> {
    return (await this.prisma.organizationInstall.findUnique({ where: { id: installId }, select: { verifiedDirectoryId: true } }))?.verifiedDirectoryId ?? null;
  }
}
