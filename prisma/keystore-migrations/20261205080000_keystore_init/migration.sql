-- The key store: a database of its own (KEYSTORE_URL; embedded: DATA_DIR/keystore), backed up on
-- its own short schedule (docs/operations.md). It holds the wrapped data keys and the shred ledger.

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

-- Every owner whose key was destroyed (a purge, an abandoned connect). Written in the same
-- transaction as the key deletion; a key is never created again for an owner listed here, and a
-- restore destroys again the keys of every owner listed here or in the ledger it replaced.
CREATE TABLE "shred_ledger" (
    "ownerType" TEXT NOT NULL,
    "ownerId" TEXT NOT NULL,
    "shreddedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "shred_ledger_pkey" PRIMARY KEY ("ownerType", "ownerId")
);
