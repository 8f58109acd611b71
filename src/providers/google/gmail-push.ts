import type { GmailWatchPort, PushGrant, PushPort } from '../ports.js';

/**
 * Gmail push: `users.watch` on the Pub/Sub topic. Calling watch again is how a watch is renewed
 * ("You must re-call watch at least every 7 days", https://developers.google.com/gmail/api/guides/push),
 * so renew and start are the same call; a watch has no id.
 */
export class GmailPush implements PushPort {
  readonly identified = false;
  /** "You must re-call watch at least every 7 days … We recommend calling watch once per day." */
  readonly maxRenewalIntervalMs = 86_400_000;

  constructor(
    private readonly watch: GmailWatchPort,
    private readonly topic: string,
  ) {}

  renew(): Promise<PushGrant> {
    return this.start();
  }

  async start(): Promise<PushGrant> {
    const info = await this.watch.watch(this.topic);
    return { id: null, expiresAt: info.expiresAt };
  }
}
