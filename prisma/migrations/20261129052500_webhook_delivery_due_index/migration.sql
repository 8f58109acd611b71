-- The delivery pump looks for due work every second; delivered/dead/cancelled rows (the vast
-- majority over time) stay out of this index, so the lookup cost tracks the backlog, not history.
CREATE INDEX "webhook_deliveries_open_idx" ON "webhook_deliveries" ("id") WHERE "status" IN ('pending', 'failed', 'delivering');
