-- Organization installs: the restriction verdict last announced to the tenant by webhook
-- (`organization_install.access_changed`, issue 15 item 2). `unrestricted` | `restricted` | null
-- (nothing announced yet). The event goes out only when a conclusive probe verdict differs from
-- it (becomes unrestricted, or back to restricted), set compare-and-swap in the transaction that
-- appends the event: once per change, not on every daily probe, and a failed probe in between
-- changes nothing.
ALTER TABLE "organization_installs" ADD COLUMN "accessNotified" TEXT;
