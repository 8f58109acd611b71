import type { Logger } from '../observability/logger.js';
import type { ProviderName } from '../providers/mail-provider.port.js';
import type { MailboxGrantRepository } from '../storage/mailbox-grant.repository.js';
import type { TokenVault } from './token-vault.service.js';

/**
 * How this run reaches one provider:
 *  - `fresh_stand_in`: a stand-in started inside this process (SANDBOX=1 alone). It keeps its users
 *    in memory, so it knows no mailbox connected before it started.
 *  - `external_stand_in`: a stand-in at SANDBOX_*_URL; it may well know the mailboxes.
 *  - `real`: the real provider.
 *  - `not_configured`: no client id/secret (and no SANDBOX).
 */
export type ProviderReach = 'fresh_stand_in' | 'external_stand_in' | 'real' | 'not_configured';

export interface SandboxStateDeps {
  grants: Pick<MailboxGrantRepository, 'listActiveIds' | 'setSyncError'>;
  vault: Pick<TokenVault, 'isSandboxGrant' | 'markReauthRequired' | 'sealedInThisProcess'>;
  logger: Pick<Logger, 'warn' | 'info'>;
  reach: Record<ProviderName, ProviderReach>;
}

export const SANDBOX_RESET_REASON = 'sandbox_reset';
const PAGE = 200;
const LOGGED_IDS = 20;

/**
 * Run once when a process starts its workers. Mailboxes that cannot work with this run's provider
 * setup are said so once, instead of failing every sync with a stack trace:
 *  - a grant issued by a stand-in (credential marker `sandbox`) that no longer exists — the
 *    in-process stand-in was restarted, or the run has no stand-in and no provider configuration —
 *    is moved to `reauth_required` with reason `sandbox_reset` (event + audit entry per mailbox,
 *    ONE log line for all of them);
 *  - any other mailbox of a provider that is not configured gets one log line and
 *    `syncState: error` / `provider_not_configured`; it stays `active` and syncs again once the
 *    provider is configured (its grant may be perfectly valid).
 * Real grants under a restarted stand-in are left alone: a stand-in cannot judge them.
 */
export class SandboxStateService {
  constructor(private readonly d: SandboxStateDeps) {}

  async reconcile(): Promise<{ reset: string[]; notConfigured: string[] }> {
    const reset: string[] = [];
    const notConfigured: string[] = [];
    for (const provider of ['google', 'microsoft'] as const) {
      const reach = this.d.reach[provider];
      if (reach !== 'fresh_stand_in' && reach !== 'not_configured') continue;
      for (let afterId: string | undefined; ; ) {
        const ids = await this.d.grants.listActiveIds(provider, afterId, PAGE);
        for (const id of ids) {
          // Connected through this process's own stand-in (in the moment since the start): it knows them.
          if (this.d.vault.sealedInThisProcess(id)) continue;
          if (await this.d.vault.isSandboxGrant(id)) {
            const statusReason = `${SANDBOX_RESET_REASON}: the ${provider} sandbox stand-in that issued this grant is gone (stand-ins keep their users in memory); connect the mailbox again`;
            if (await this.d.vault.markReauthRequired(id, SANDBOX_RESET_REASON, statusReason)) reset.push(id);
          } else if (reach === 'not_configured') {
            await this.d.grants.setSyncError(id, 'provider_not_configured');
            this.d.logger.warn(
              { mailboxId: id, provider },
              `${provider === 'google' ? 'Google (GOOGLE_CLIENT_ID/GOOGLE_CLIENT_SECRET)' : 'Microsoft (MICROSOFT_CLIENT_ID/MICROSOFT_CLIENT_SECRET)'} is not configured: this mailbox cannot sync or send until it is`,
            );
            notConfigured.push(id);
          }
        }
        if (ids.length < PAGE) break;
        afterId = ids[ids.length - 1];
      }
    }
    if (reset.length) {
      this.d.logger.warn(
        { count: reset.length, reason: SANDBOX_RESET_REASON, mailboxIds: reset.slice(0, LOGGED_IDS) },
        'mailboxes connected through a sandbox stand-in that no longer exists are now reauth_required (sandbox_reset); connect them again',
      );
    }
    return { reset, notConfigured };
  }
}
