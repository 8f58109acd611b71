-- When the mailbox's Gmail watch / Graph subscription is next renewed: computed from the
-- expiration the provider returned (80 % of the granted lifetime, less jitter; Gmail at most a
-- day), not from an assumed 7-day lifetime. The renewal scheduler selects on it.
ALTER TABLE "mailboxes" ADD COLUMN "pushRenewAt" TIMESTAMP(3);

-- Existing watches keep the schedule they had: Gmail when 6 of 7 days are left, Graph 2 days
-- before expiry. Their next renewal then stores a computed time.
UPDATE "mailboxes" SET "pushRenewAt" = "watchExpiresAt" - INTERVAL '6 days'
  WHERE "provider" = 'google' AND "watchExpiresAt" IS NOT NULL;
UPDATE "mailboxes" SET "pushRenewAt" = "subscriptionExpiresAt" - INTERVAL '2 days'
  WHERE "provider" = 'microsoft' AND "subscriptionExpiresAt" IS NOT NULL;

CREATE INDEX "mailboxes_pushRenewAt_idx" ON "mailboxes" ("pushRenewAt");
