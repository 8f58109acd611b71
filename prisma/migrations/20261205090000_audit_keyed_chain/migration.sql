-- Keyed audit chain: entries from now on are sealed with HMAC-SHA-256 under a versioned audit key
-- kept outside the database (AUDIT_HMAC_KEYS). Existing entries keep their plain SHA-256 links
-- (keyVersion NULL); the signed anchor file records where that history ends.
ALTER TABLE "audit_log" ADD COLUMN "keyVersion" INTEGER;
