/** Renew when this share of the lifetime the provider granted has passed… */
const RENEW_AT_SHARE = 0.8;
/** …less up to this share more (jitter), so mailboxes connected together do not renew together. */
const JITTER_SHARE = 0.1;

/**
 * When to renew a push channel (Gmail watch, Graph subscription), from the expiration the
 * provider returned (Gmail `users.watch` → `expiration`, epoch ms; Graph → `expirationDateTime`),
 * not from an assumed lifetime: at 70–80 % of what is left (uniform jitter). A provider rule on
 * top — the push port's `maxRenewalIntervalMs` (Gmail: daily, provider-facts §1.1) — caps the
 * wait, less up to 10 % jitter. An expiration already past → now.
 */
export function renewalDueAt(input: { expiresAt: Date; now: Date; random: () => number; maxRenewalIntervalMs?: number | undefined }): Date {
  const now = input.now.getTime();
  const remaining = input.expiresAt.getTime() - now;
  if (!(remaining > 0)) return new Date(now);
  let at = now + remaining * (RENEW_AT_SHARE - JITTER_SHARE * input.random());
  if (input.maxRenewalIntervalMs !== undefined) at = Math.min(at, now + input.maxRenewalIntervalMs * (1 - JITTER_SHARE * input.random()));
  return new Date(Math.floor(at));
}

/** A watch/subscription is due for renewal when none is recorded or its renewal time has come. */
export function renewalDue(renewAt: Date | null, expiresAt: Date | null, now: Date): boolean {
  if (!expiresAt || expiresAt.getTime() <= now.getTime()) return true;
  return !renewAt || renewAt.getTime() <= now.getTime();
}
