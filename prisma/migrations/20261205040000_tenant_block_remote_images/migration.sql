-- Tenant display setting (issue 13): remote images in `safeHtml` are turned off at read and
-- delivery time (tracking pixels) when true. Existing tenants keep remote images (false).
ALTER TABLE "tenants" ADD COLUMN "blockRemoteImages" BOOLEAN NOT NULL DEFAULT false;
