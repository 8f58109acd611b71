-- Tenant branding of the hosted connect pages (issue 16 item 4): the name the customer sees
-- instead of "your helpdesk", a logo URL and a support link. All optional; existing tenants keep
-- the generic pages (null). Validated by the API and the CLI (src/tenancy/tenant-branding.ts),
-- not here: the rules (https only, no credentials, length limits) are the application's.
ALTER TABLE "tenants" ADD COLUMN "displayName" TEXT;
ALTER TABLE "tenants" ADD COLUMN "logoUrl" TEXT;
ALTER TABLE "tenants" ADD COLUMN "supportUrl" TEXT;
