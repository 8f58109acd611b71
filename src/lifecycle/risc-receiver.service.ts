import { createHash } from 'node:crypto';
import type { AuditService } from '../audit/audit.service.js';
import type { BlindIndex } from '../crypto/blind-index.js';
import type { Logger } from '../observability/logger.js';
import type { PurgeRepository } from '../storage/purge.repository.js';
import type { LifecycleEventWriter, PendingEvent } from './lifecycle-event.writer.js';
import type { SetClaims, SetVerifier } from '../providers/google/set-verifier.js';

/** Event types that mean "this grant no longer works": the mailbox needs the customer again. */
export const RISC_REAUTH_EVENTS: ReadonlySet<string> = new Set([
  'https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked',
  'https://schemas.openid.net/secevent/oauth/event-type/token-revoked',
  'https://schemas.openid.net/secevent/risc/event-type/sessions-revoked',
  'https://schemas.openid.net/secevent/risc/event-type/account-disabled',
  'https://schemas.openid.net/secevent/risc/event-type/account-credential-change-required',
]);

export interface RiscOutcome {
  jti: string;
  events: string[];
  /** Mailboxes moved to reauth_required by this SET. */
  matched: number;
  /** True when the subject could not be matched to a stored mailbox (see docs/data-lifecycle.md). */
  unmatched: boolean;
}

/**
 * Google Cross-Account Protection receiver (provider-facts §2.3). A verified SET whose event says
 * the grant is gone moves the matching Google mailboxes to `reauth_required` at once (and so
 * starts the reauth grace period that ends in a purge) and emits `mailbox.reauth_required`.
 *
 * Matching: Google identifies the user by `iss-sub`. The connector stores no Google `sub` (the
 * connect room keeps only the address, as a blind index), so an `email` subject is matched by
 * address and an `iss-sub` subject is logged (as a hash) and acknowledged without a match; the
 * next token refresh then finds `invalid_grant` and flips the mailbox itself.
 */
export class RiscReceiverService {
  constructor(
    private readonly verifier: Pick<SetVerifier, 'verify'>,
    private readonly repo: PurgeRepository,
    private readonly blindIndex: BlindIndex,
    private readonly events: LifecycleEventWriter,
    private readonly audit: AuditService,
    private readonly logger: Logger,
    private readonly clock: () => Date,
  ) {}

  /** Throws SetVerificationError for anything not verifiably from the issuer. */
  async receive(jwt: string): Promise<RiscOutcome> {
    const claims = await this.verifier.verify(jwt);
    const types = Object.keys(claims.events);
    const outcome: RiscOutcome = { jti: claims.jti, events: types, matched: 0, unmatched: false };
    for (const [type, body] of Object.entries(claims.events)) {
      if (!RISC_REAUTH_EVENTS.has(type)) continue; // verification, account-enabled: acknowledged only
      const email = body.subject?.email;
      if (!email) {
        outcome.unmatched = true;
        this.logger.info({ jti: claims.jti, eventType: type, subjectType: body.subject?.subject_type, subjectHash: subjectHash(claims, body.subject?.sub) }, 'RISC event without a matchable subject');
        continue;
      }
      outcome.matched += await this.flip(this.blindIndex.emailIndex(email), type, claims.jti);
    }
    return outcome;
  }

  private async flip(addressIndex: string, eventType: string, jti: string): Promise<number> {
    const reason = `risc:${eventType.slice(eventType.lastIndexOf('/') + 1)}`;
    const now = this.clock();
    const pending: PendingEvent[] = [];
    const ids = await this.repo.transaction(async (tx) => {
      const flipped = await this.repo.markReauthRequiredByAddress(tx, 'google', addressIndex, reason, now);
      for (const m of flipped) {
        pending.push(await this.events.append(tx, { tenantId: m.tenantId, mailboxId: m.id, type: 'mailbox.reauth_required', refs: {}, data: { reason, status: 'reauth_required' } }));
        await this.audit.record({ tenantId: m.tenantId, actorType: 'system', actorId: 'risc', action: 'mailbox.reauth_required', targetType: 'mailbox', targetId: m.id, reason, metadata: { jti } }, tx);
      }
      return flipped;
    });
    await this.events.dispatch(pending);
    return ids.length;
  }
}

function subjectHash(claims: SetClaims, sub: string | undefined): string | null {
  return sub ? createHash('sha256').update(`${claims.iss}|${sub}`).digest('hex').slice(0, 16) : null;
}
