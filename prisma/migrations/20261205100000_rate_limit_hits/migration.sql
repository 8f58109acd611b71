-- Hit counters of the abuse limits (src/http/abuse-limits.ts): one row per limiter and client
-- (IP address or API-key prefix, never a whole key), shared by every process on this database so
-- a limit holds across processes. A row is only a count and the end of its window; expired rows
-- are deleted as new hits arrive.
CREATE TABLE "rate_limit_hits" (
    "key" TEXT NOT NULL,
    "hits" INTEGER NOT NULL,
    "resetAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "rate_limit_hits_pkey" PRIMARY KEY ("key")
);
CREATE INDEX "rate_limit_hits_resetAt_idx" ON "rate_limit_hits"("resetAt");
