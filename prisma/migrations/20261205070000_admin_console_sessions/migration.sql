-- Sessions of the ops console (/admin): one row per sign-in with an admin API key. The browser
-- holds a random token in an HttpOnly cookie; only its SHA-256 is stored here, so a copy of this
-- table signs nobody in. A session ends at `expiresAt` (absolute), after `idleMinutes` without a
-- request (`seenAt`), on sign-out (`endedAt`), or when its API key is revoked.
CREATE TABLE "admin_sessions" (
    "tokenHash" TEXT NOT NULL,
    "apiKeyId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "seenAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "endedAt" TIMESTAMP(3),
    CONSTRAINT "admin_sessions_pkey" PRIMARY KEY ("tokenHash")
);
CREATE INDEX "admin_sessions_expiresAt_idx" ON "admin_sessions"("expiresAt");
