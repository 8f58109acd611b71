import type { PrismaClient } from './database.js';
import { newId } from './ids.js';
import type { ProviderName } from '../providers/mail-provider.port.js';

export type ConnectSessionStatus = 'pending' | 'authorizing' | 'completed' | 'failed' | 'expired';
/** `mailbox_access_denied`: the person who signed in cannot read the shared mailbox the session names (or it does not exist). */
export type ConnectResult = 'connected' | 'denied' | 'missing_scopes' | 'mailbox_access_denied' | 'expired' | 'error';

export interface ConnectSessionRecord {
  id: string;
  tenantId: string;
  provider: ProviderName | null;
  mailboxId: string | null;
  /** The shared mailbox the session asks for (address, tenant DEK, SESSION_MAILBOX_AAD in connect.service.ts); null = the signed-in person's own. */
  mailboxAddressEnc: Uint8Array | null;
  returnUrl: string | null;
  pkceVerifierEnc: Uint8Array | null;
  status: ConnectSessionStatus;
  result: ConnectResult | null;
  resultMailboxId: string | null;
  missingScopes: string[];
  expiresAt: Date;
  usedAt: Date | null;
  createdAt: Date;
}

const SELECT = {
  id: true,
  tenantId: true,
  provider: true,
  mailboxId: true,
  mailboxAddressEnc: true,
  returnUrl: true,
  pkceVerifierEnc: true,
  status: true,
  result: true,
  resultMailboxId: true,
  missingScopes: true,
  expiresAt: true,
  usedAt: true,
  createdAt: true,
} as const;

/**
 * `connect_sessions`: one row per hosted connect attempt. The OAuth `state` is stored only as its
 * SHA-256; claiming it (`claimByStateHash`) is a single conditional UPDATE, so two callbacks
 * racing with the same state cannot both proceed.
 */
export class ConnectSessionRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** `id` may be given when something bound to it (an encrypted field's AAD) was made first. */
  async create(input: { id?: string; tenantId: string; provider: ProviderName | null; mailboxId: string | null; mailboxAddressEnc?: Uint8Array | null; returnUrl: string | null; expiresAt: Date }): Promise<ConnectSessionRecord> {
    const { id, mailboxAddressEnc, ...rest } = input;
    const row = await this.prisma.connectSession.create({
      data: { id: id ?? newId('connectSession'), ...rest, mailboxAddressEnc: mailboxAddressEnc ? Buffer.from(mailboxAddressEnc) : null, status: 'pending' },
      select: SELECT,
    });
    return row as ConnectSessionRecord;
  }

  /** By id alone: the hosted page is reached without an API key, the id is the bearer. */
  async findUnscoped(id: string): Promise<ConnectSessionRecord | null> {
    return (await this.prisma.connectSession.findUnique({ where: { id }, select: SELECT })) as ConnectSessionRecord | null;
  }

  async findByStateHash(stateHash: string): Promise<ConnectSessionRecord | null> {
    return (await this.prisma.connectSession.findUnique({ where: { stateHash }, select: SELECT })) as ConnectSessionRecord | null;
  }

  /**
   * Starts (or restarts, e.g. after the back button) the provider redirect: a fresh state
   * replaces the old one, so an earlier consent tab can no longer complete.
   */
  async beginAuthorization(id: string, input: { provider: ProviderName; stateHash: string; pkceVerifierEnc: Uint8Array; now: Date }): Promise<boolean> {
    const res = await this.prisma.connectSession.updateMany({
      where: {
        id,
        expiresAt: { gt: input.now },
        OR: [
          { status: { in: ['pending', 'authorizing'] }, usedAt: null },
          // "Try again" after the customer declined or unticked a permission: a new attempt in the
          // same session (new state and verifier; the earlier callback can no longer complete).
          { status: 'failed', result: { in: ['denied', 'missing_scopes', 'mailbox_access_denied'] } },
        ],
      },
      data: { provider: input.provider, stateHash: input.stateHash, pkceVerifierEnc: Buffer.from(input.pkceVerifierEnc), status: 'authorizing', usedAt: null, result: null, missingScopes: [] },
    });
    return res.count === 1;
  }

  /** Single use: true for exactly one caller, and only while the session is live. */
  async claimByStateHash(stateHash: string, now: Date): Promise<boolean> {
    const res = await this.prisma.connectSession.updateMany({
      where: { stateHash, status: 'authorizing', usedAt: null, expiresAt: { gt: now } },
      data: { usedAt: now },
    });
    return res.count === 1;
  }

  async finish(id: string, outcome: { status: 'completed' | 'failed' | 'expired'; result: ConnectResult; resultMailboxId?: string | null; missingScopes?: string[] }): Promise<void> {
    await this.prisma.connectSession.update({
      where: { id },
      // The verifier has done its job; keep no secret longer than needed.
      data: { status: outcome.status, result: outcome.result, resultMailboxId: outcome.resultMailboxId ?? null, missingScopes: outcome.missingScopes ?? [], pkceVerifierEnc: null },
    });
  }

  /**
   * Housekeeping: erase the PKCE verifier of every session past its expiry (abandoned at the
   * provider's consent screen) and delete sessions older than `deleteBefore`.
   */
  async prune(now: Date, deleteBefore: Date): Promise<void> {
    await this.prisma.connectSession.updateMany({ where: { expiresAt: { lte: now }, pkceVerifierEnc: { not: null } }, data: { pkceVerifierEnc: null } });
    await this.prisma.connectSession.deleteMany({ where: { expiresAt: { lt: deleteBefore } } });
  }

  async markExpired(id: string): Promise<void> {
    await this.prisma.connectSession.updateMany({
      where: { id, status: { in: ['pending', 'authorizing'] } },
      data: { status: 'expired', result: 'expired', pkceVerifierEnc: null },
    });
  }
}
