-- Initial schema: the whole domain (see prisma/schema.prisma for what each column holds).
-- Columns ending in "Enc" are AES-256-GCM ciphertext; columns ending in "Index" are blind indexes.

CREATE TABLE "tenants" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "allowedReturnOrigins" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "retentionDays" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "tenants_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "api_keys" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT,
    "name" TEXT NOT NULL,
    "scope" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "keyHash" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" TIMESTAMP(3),
    "revokedAt" TIMESTAMP(3),
    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "api_keys_keyHash_key" ON "api_keys"("keyHash");
CREATE INDEX "api_keys_tenantId_idx" ON "api_keys"("tenantId");

CREATE TABLE "data_keys" (
    "id" TEXT NOT NULL,
    "ownerType" TEXT NOT NULL,
    "ownerId" TEXT NOT NULL,
    "dekVersion" INTEGER NOT NULL DEFAULT 1,
    "kekVersion" INTEGER NOT NULL,
    "wrappedKey" BYTEA NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "rotatedAt" TIMESTAMP(3),
    CONSTRAINT "data_keys_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "data_keys_ownerType_ownerId_key" ON "data_keys"("ownerType", "ownerId");

CREATE TABLE "mailboxes" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "addressEnc" BYTEA NOT NULL,
    "addressIndex" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'active',
    "statusReason" TEXT,
    "credentialEnc" BYTEA,
    "accountIdEnc" BYTEA,
    "grantedScopes" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "syncCursor" JSONB,
    "syncState" TEXT NOT NULL DEFAULT 'idle',
    "syncError" TEXT,
    "backfillCompletedAt" TIMESTAMP(3),
    "lastSyncedAt" TIMESTAMP(3),
    "lastPushAt" TIMESTAMP(3),
    "watchExpiresAt" TIMESTAMP(3),
    "subscriptionId" TEXT,
    "subscriptionExpiresAt" TIMESTAMP(3),
    "clientStateEnc" BYTEA,
    "reauthRequiredAt" TIMESTAMP(3),
    "eventSeq" BIGINT NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "mailboxes_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "mailboxes_tenantId_provider_addressIndex_key" ON "mailboxes"("tenantId", "provider", "addressIndex");
CREATE INDEX "mailboxes_addressIndex_idx" ON "mailboxes"("addressIndex");
CREATE INDEX "mailboxes_subscriptionId_idx" ON "mailboxes"("subscriptionId");
CREATE INDEX "mailboxes_status_idx" ON "mailboxes"("status");

CREATE TABLE "connect_sessions" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "provider" TEXT,
    "mailboxId" TEXT,
    "returnUrl" TEXT,
    "stateHash" TEXT,
    "pkceVerifierEnc" BYTEA,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "result" TEXT,
    "resultMailboxId" TEXT,
    "missingScopes" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "usedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "connect_sessions_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "connect_sessions_stateHash_key" ON "connect_sessions"("stateHash");
CREATE INDEX "connect_sessions_tenantId_idx" ON "connect_sessions"("tenantId");

CREATE TABLE "messages" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "mailboxId" TEXT NOT NULL,
    "providerMessageId" TEXT NOT NULL,
    "providerThreadId" TEXT,
    "messageIdIndex" TEXT,
    "threadKey" TEXT NOT NULL,
    "direction" TEXT NOT NULL DEFAULT 'inbound',
    "isAutoReply" BOOLEAN NOT NULL DEFAULT false,
    "isBounce" BOOLEAN NOT NULL DEFAULT false,
    "oversize" BOOLEAN NOT NULL DEFAULT false,
    "parseError" TEXT,
    "sizeBytes" INTEGER NOT NULL DEFAULT 0,
    "receivedAt" TIMESTAMP(3) NOT NULL,
    "contentEnc" BYTEA NOT NULL,
    "rawBlobId" TEXT,
    "outboundId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "messages_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "messages_mailboxId_providerMessageId_key" ON "messages"("mailboxId", "providerMessageId");
CREATE INDEX "messages_mailboxId_messageIdIndex_idx" ON "messages"("mailboxId", "messageIdIndex");
CREATE INDEX "messages_mailboxId_threadKey_idx" ON "messages"("mailboxId", "threadKey");
CREATE INDEX "messages_tenantId_mailboxId_id_idx" ON "messages"("tenantId", "mailboxId", "id");
CREATE INDEX "messages_mailboxId_receivedAt_idx" ON "messages"("mailboxId", "receivedAt");

CREATE TABLE "message_addresses" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "mailboxId" TEXT NOT NULL,
    "messageId" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "addressIndex" TEXT NOT NULL,
    CONSTRAINT "message_addresses_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "message_addresses_tenantId_addressIndex_idx" ON "message_addresses"("tenantId", "addressIndex");
CREATE INDEX "message_addresses_messageId_idx" ON "message_addresses"("messageId");
CREATE INDEX "message_addresses_mailboxId_idx" ON "message_addresses"("mailboxId");

CREATE TABLE "thread_refs" (
    "mailboxId" TEXT NOT NULL,
    "refIndex" TEXT NOT NULL,
    "threadKey" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "thread_refs_pkey" PRIMARY KEY ("mailboxId", "refIndex")
);

CREATE TABLE "attachments" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "mailboxId" TEXT NOT NULL,
    "messageId" TEXT NOT NULL,
    "ordinal" INTEGER NOT NULL,
    "filenameEnc" BYTEA,
    "contentType" TEXT NOT NULL,
    "size" INTEGER NOT NULL DEFAULT 0,
    "contentIdEnc" BYTEA,
    "isInline" BOOLEAN NOT NULL DEFAULT false,
    "scanStatus" TEXT NOT NULL DEFAULT 'pending',
    "scanSignature" TEXT,
    "scanAttempts" INTEGER NOT NULL DEFAULT 0,
    "scanError" TEXT,
    "scannedAt" TIMESTAMP(3),
    "nextScanAt" TIMESTAMP(3),
    "blobId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "attachments_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "attachments_messageId_ordinal_key" ON "attachments"("messageId", "ordinal");
CREATE INDEX "attachments_mailboxId_idx" ON "attachments"("mailboxId");
CREATE INDEX "attachments_scanStatus_nextScanAt_idx" ON "attachments"("scanStatus", "nextScanAt");

CREATE TABLE "blobs" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "mailboxId" TEXT,
    "kind" TEXT NOT NULL,
    "size" BIGINT NOT NULL DEFAULT 0,
    "chunks" INTEGER NOT NULL DEFAULT 0,
    "complete" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "blobs_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "blobs_mailboxId_idx" ON "blobs"("mailboxId");

CREATE TABLE "blob_chunks" (
    "blobId" TEXT NOT NULL,
    "seq" INTEGER NOT NULL,
    "dataEnc" BYTEA NOT NULL,
    CONSTRAINT "blob_chunks_pkey" PRIMARY KEY ("blobId", "seq")
);

CREATE TABLE "outbox_events" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "mailboxId" TEXT,
    "type" TEXT NOT NULL,
    "seq" BIGINT NOT NULL,
    "refs" JSONB NOT NULL DEFAULT '{}',
    "dataEnc" BYTEA,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "dispatchedAt" TIMESTAMP(3),
    CONSTRAINT "outbox_events_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "outbox_events_tenantId_createdAt_idx" ON "outbox_events"("tenantId", "createdAt");
CREATE INDEX "outbox_events_dispatchedAt_idx" ON "outbox_events"("dispatchedAt");
CREATE INDEX "outbox_events_mailboxId_idx" ON "outbox_events"("mailboxId");

CREATE TABLE "webhook_endpoints" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "description" TEXT,
    "events" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "disabledReason" TEXT,
    "secretEnc" BYTEA NOT NULL,
    "previousSecretEnc" BYTEA,
    "previousSecretExpiresAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "deletedAt" TIMESTAMP(3),
    CONSTRAINT "webhook_endpoints_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "webhook_endpoints_tenantId_idx" ON "webhook_endpoints"("tenantId");

CREATE TABLE "webhook_deliveries" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "eventId" TEXT NOT NULL,
    "endpointId" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" TIMESTAMP(3),
    "lastAttemptAt" TIMESTAMP(3),
    "lastStatus" INTEGER,
    "deliveredAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "webhook_deliveries_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "webhook_deliveries_eventId_endpointId_key" ON "webhook_deliveries"("eventId", "endpointId");
CREATE INDEX "webhook_deliveries_tenantId_status_idx" ON "webhook_deliveries"("tenantId", "status");
CREATE INDEX "webhook_deliveries_endpointId_status_idx" ON "webhook_deliveries"("endpointId", "status");

CREATE TABLE "delivery_attempts" (
    "id" TEXT NOT NULL,
    "deliveryId" TEXT NOT NULL,
    "attemptNo" INTEGER NOT NULL,
    "statusCode" INTEGER,
    "latencyMs" INTEGER NOT NULL,
    "responseSnippet" TEXT,
    "error" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "delivery_attempts_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "delivery_attempts_deliveryId_idx" ON "delivery_attempts"("deliveryId");

CREATE TABLE "outbound_messages" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "mailboxId" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "replyToMessageId" TEXT,
    "idempotencyKey" TEXT NOT NULL,
    "requestHash" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'queued',
    "failureCode" TEXT,
    "failureReason" TEXT,
    "messageIdIndex" TEXT NOT NULL,
    "contentEnc" BYTEA NOT NULL,
    "providerMessageId" TEXT,
    "providerThreadId" TEXT,
    "threadKey" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "sendStartedAt" TIMESTAMP(3),
    "sentAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "outbound_messages_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "outbound_messages_tenantId_idempotencyKey_key" ON "outbound_messages"("tenantId", "idempotencyKey");
CREATE INDEX "outbound_messages_mailboxId_messageIdIndex_idx" ON "outbound_messages"("mailboxId", "messageIdIndex");

CREATE TABLE "audit_log" (
    "seq" BIGSERIAL NOT NULL,
    "id" TEXT NOT NULL,
    "tenantId" TEXT,
    "actorType" TEXT NOT NULL,
    "actorId" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "targetType" TEXT,
    "targetId" TEXT,
    "reason" TEXT,
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "prevHash" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "audit_log_pkey" PRIMARY KEY ("seq")
);
CREATE UNIQUE INDEX "audit_log_id_key" ON "audit_log"("id");
CREATE INDEX "audit_log_tenantId_seq_idx" ON "audit_log"("tenantId", "seq");

CREATE TABLE "purge_receipts" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "mailboxId" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "trigger" TEXT NOT NULL,
    "reason" TEXT,
    "status" TEXT NOT NULL DEFAULT 'running',
    "steps" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "counts" JSONB NOT NULL DEFAULT '{}',
    "revokeStatus" TEXT NOT NULL DEFAULT 'pending',
    "revokeAttempts" INTEGER NOT NULL DEFAULT 0,
    "revokeError" TEXT,
    "revokeTokenEnc" BYTEA,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completedAt" TIMESTAMP(3),
    CONSTRAINT "purge_receipts_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "purge_receipts_tenantId_idx" ON "purge_receipts"("tenantId");
CREATE INDEX "purge_receipts_mailboxId_idx" ON "purge_receipts"("mailboxId");

CREATE TABLE "break_glass_sessions" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "mailboxId" TEXT NOT NULL,
    "operator" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "ticketRef" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "endedAt" TIMESTAMP(3),
    CONSTRAINT "break_glass_sessions_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "break_glass_sessions_mailboxId_idx" ON "break_glass_sessions"("mailboxId");

ALTER TABLE "message_addresses" ADD CONSTRAINT "message_addresses_messageId_fkey" FOREIGN KEY ("messageId") REFERENCES "messages"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "attachments" ADD CONSTRAINT "attachments_messageId_fkey" FOREIGN KEY ("messageId") REFERENCES "messages"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "blob_chunks" ADD CONSTRAINT "blob_chunks_blobId_fkey" FOREIGN KEY ("blobId") REFERENCES "blobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_eventId_fkey" FOREIGN KEY ("eventId") REFERENCES "outbox_events"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_endpointId_fkey" FOREIGN KEY ("endpointId") REFERENCES "webhook_endpoints"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "delivery_attempts" ADD CONSTRAINT "delivery_attempts_deliveryId_fkey" FOREIGN KEY ("deliveryId") REFERENCES "webhook_deliveries"("id") ON DELETE CASCADE ON UPDATE CASCADE;
