-- Organization installs (issue 15 items 2, 3, 5): an administrator grants the connector access
-- for a whole organization once (Microsoft: admin consent for application permissions, then
-- client-credential tokens; Google Workspace: a service account with domain-wide delegation),
-- and the helpdesk adds mailboxes to the install by address. Provider-neutral:
--   provider          google | microsoft
--   status            pending (consent not given yet) | active | failed (consent refused or
--                     incomplete) | uninstalled (every mailbox of it purged)
--   stateHash         SHA-256 of the single-use consent `state` (the state itself is never stored)
--   directoryId       the organization at the provider: Microsoft Entra tenant id, Google
--                     Workspace customer id (an identifier, not a secret)
--   grantedPermissions the application permissions / scopes the consent granted
--   credentialEnc     a credential of the install's own when the provider needs one (a Google
--                     service-account key), encrypted with the tenant DEK
--                     (AAD {table: organization_installs, column: credentialEnc, rowId}); null for
--                     Microsoft (the connector's own app credential is configuration)
--   probeAddressEnc   an address in the organization the app must NOT be able to read, used to
--                     detect an unrestricted app (tenant DEK, AAD {…, column: probeAddressEnc, rowId})
--   accessCheck       unknown | restricted | unrestricted | failed: the last probe's verdict
CREATE TABLE "organization_installs" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "statusReason" TEXT,
    "stateHash" TEXT,
    "returnUrl" TEXT,
    "consentExpiresAt" TIMESTAMP(3),
    "directoryId" TEXT,
    "grantedPermissions" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "credentialEnc" BYTEA,
    "probeAddressEnc" BYTEA,
    "accessCheck" TEXT NOT NULL DEFAULT 'unknown',
    "accessCheckedAt" TIMESTAMP(3),
    "installedAt" TIMESTAMP(3),
    "uninstalledAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "organization_installs_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "organization_installs_provider_check" CHECK ("provider" IN ('google', 'microsoft')),
    CONSTRAINT "organization_installs_status_check" CHECK ("status" IN ('pending', 'active', 'failed', 'uninstalled')),
    CONSTRAINT "organization_installs_access_check_check" CHECK ("accessCheck" IN ('unknown', 'restricted', 'unrestricted', 'failed'))
);
CREATE UNIQUE INDEX "organization_installs_stateHash_key" ON "organization_installs"("stateHash");
CREATE INDEX "organization_installs_tenantId_idx" ON "organization_installs"("tenantId");
-- One live install per organization and provider in a tenant.
CREATE UNIQUE INDEX "organization_installs_active_directory_key" ON "organization_installs"("tenantId", "provider", "directoryId") WHERE "status" = 'active';

-- A mailbox added to an organization install (access = 'organization') names its install.
ALTER TABLE "mailboxes" ADD COLUMN "organizationInstallId" TEXT;
CREATE INDEX "mailboxes_organizationInstallId_idx" ON "mailboxes"("organizationInstallId");
ALTER TABLE "mailboxes" ADD CONSTRAINT "mailboxes_organization_install_check" CHECK (("access" = 'organization') = ("organizationInstallId" IS NOT NULL));
