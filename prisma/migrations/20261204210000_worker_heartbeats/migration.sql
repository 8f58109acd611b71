-- One row per process that runs job workers (`serve`, `worker`), refreshed every ~15 s: readiness
-- of a `serve --no-workers` asks whether any worker was seen recently. Rows of processes that died
-- without removing theirs age out (pruned after a day).
CREATE TABLE "worker_heartbeats" (
    "id" TEXT NOT NULL,
    "command" TEXT NOT NULL,
    "hostname" TEXT NOT NULL,
    "pid" INTEGER NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "seenAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "worker_heartbeats_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "worker_heartbeats_seenAt_idx" ON "worker_heartbeats"("seenAt");
