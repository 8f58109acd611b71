-- When a sync last found new mail that no push notification had announced (no notification since
-- the sync before it) while the mailbox's Gmail watch / Graph subscription was live: push is
-- failing. Until a notification arrives after this time (lastPushAt > pushMissedAt) the mailbox
-- is polled every POLL_INTERVAL_SECONDS like one without push (src/sync/sync-scheduler.service.ts).
ALTER TABLE "mailboxes" ADD COLUMN "pushMissedAt" TIMESTAMP(3);
