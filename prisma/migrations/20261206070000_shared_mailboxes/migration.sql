-- Shared mailboxes (issue 15 item 1) and the access kind of every mailbox record.
-- "access" says on whose authority the connector reads the mailbox:
--   delegated      the person who signed in, their own mailbox (every mailbox before this migration)
--   shared_member  a Microsoft 365 shared mailbox, read through a member's delegated
--                  Mail.Read.Shared / Mail.Send.Shared grant (/users/{address}/...; polled, no push)
--   organization   reserved for organization installs (admin consent, app-only tokens)
-- "connectedByEnc": the address of the person whose grant the connector uses when that is not the
-- mailbox itself (the member of a shared mailbox), encrypted with the mailbox DEK like addressEnc
-- (AAD {table: mailboxes, column: connectedByEnc, rowId}); null for delegated mailboxes.
ALTER TABLE "mailboxes" ADD COLUMN "access" TEXT NOT NULL DEFAULT 'delegated';
ALTER TABLE "mailboxes" ADD CONSTRAINT "mailboxes_access_check" CHECK ("access" IN ('delegated', 'shared_member', 'organization'));
ALTER TABLE "mailboxes" ADD COLUMN "connectedByEnc" BYTEA;
-- The mailbox a connect session asks for when it is not the signed-in person's own (the shared
-- address), encrypted with the tenant DEK (AAD {table: connect_sessions, column:
-- mailboxAddressEnc, rowId}); null for an ordinary session.
ALTER TABLE "connect_sessions" ADD COLUMN "mailboxAddressEnc" BYTEA;
