-- Data keys moved to the key store (its own database: KEYSTORE_URL; embedded: DATA_DIR/keystore).
-- An empty data_keys table (a new install) is dropped here. A table that still holds keys (an
-- install from before the move) is kept: the service refuses to start until
-- `mailbox-connector keystore migrate` has copied them into the key store and dropped it.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM "data_keys") THEN
    DROP TABLE "data_keys";
  END IF;
END $$;
