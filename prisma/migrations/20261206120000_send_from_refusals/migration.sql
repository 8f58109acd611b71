-- From addresses a provider refused (Exchange ErrorSendAsDenied: `send_as_denied`) or rewrote (an
-- alias sent from the primary address: `alias_rewritten`) at a send, remembered until `expiresAt`
-- (10 minutes) so every process — not only the worker that saw it — refuses requests naming that
-- From with 422 up front (issue 15 item 4). The address is stored only as its keyed blind index
-- (HMAC-SHA256, BlindIndex.emailIndex), never in plaintext. Rows go with their mailbox (purge
-- deletes the mailbox row: ON DELETE CASCADE); expired rows are ignored by readers and deleted by
-- the daily retention job.
CREATE TABLE "send_from_refusals" (
    "mailboxId" TEXT NOT NULL,
    "addressIndex" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "send_from_refusals_pkey" PRIMARY KEY ("mailboxId", "addressIndex"),
    CONSTRAINT "send_from_refusals_mailboxId_fkey" FOREIGN KEY ("mailboxId") REFERENCES "mailboxes"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "send_from_refusals_reason_check" CHECK ("reason" IN ('send_as_denied', 'alias_rewritten'))
);

CREATE INDEX "send_from_refusals_expiresAt_idx" ON "send_from_refusals"("expiresAt");
