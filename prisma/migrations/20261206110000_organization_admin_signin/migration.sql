-- Organization installs, Microsoft: the administrator signs in before the admin consent (issue 15
-- item 2), so the directory the install is bound to comes from a verified ID token (`tid`), not
-- from the unsigned `/adminconsent` redirect.
--   signinStateHash      SHA-256 of the single-use `state` of the pending sign-in (the state is
--                        never stored); cleared when the sign-in completes or the install ends
--   signinEnc            the sign-in's PKCE code verifier and OpenID nonce (JSON), encrypted with
--                        the tenant DEK (AAD {table: organization_installs, column: signinEnc, rowId})
--   verifiedDirectoryId  the Entra tenant id (`tid`) of the administrator's verified ID token: the
--                        admin-consent redirect must name this directory, else the install fails
ALTER TABLE "organization_installs" ADD COLUMN "signinStateHash" TEXT;
ALTER TABLE "organization_installs" ADD COLUMN "signinEnc" BYTEA;
ALTER TABLE "organization_installs" ADD COLUMN "verifiedDirectoryId" TEXT;
CREATE UNIQUE INDEX "organization_installs_signinStateHash_key" ON "organization_installs"("signinStateHash");
