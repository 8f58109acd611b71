-- Where a message came from (issue 13 item 9): 'backfill' (imported history: fetched by a window
-- walk and received by the provider before the mailbox was connected) or 'live' (everything else:
-- mail that arrived after the connection). Not content: plaintext. Ingest marks backfill rows;
-- the default covers everything else.
ALTER TABLE "messages" ADD COLUMN "origin" TEXT NOT NULL DEFAULT 'live';
ALTER TABLE "messages" ADD CONSTRAINT "messages_origin_check" CHECK ("origin" IN ('backfill', 'live'));

-- Rows stored before: received before their mailbox was connected = the history the initial
-- backfill imported; the rest arrived after connect (docs/sync.md, "Backfill and live mail").
UPDATE "messages" AS m SET "origin" = 'backfill'
  FROM "mailboxes" AS b
 WHERE b."id" = m."mailboxId" AND m."receivedAt" < b."createdAt";
