-- The webhook pump's fan-out of committed events in ONE statement (issue 12: statements per live
-- message). Before, WebhookRepository.dispatchCommitted sent seven for each batch: an idle probe,
-- BEGIN, the events (FOR NO KEY UPDATE SKIP LOCKED), the tenants' endpoints, the deliveries INSERT,
-- the events' dispatchedAt UPDATE, COMMIT — at live rates a batch is one event, so seven
-- statements per message. The delivery ids were the only thing made outside the database.

-- An id of the connector's format (src/storage/ids.ts newId): `<prefix>_` + Crockford base32 of
-- 128 bits — 48 bits of milliseconds since the epoch (big-endian), then 80 random bits — 26
-- characters, the last one padded with two zero bits. The random bits come from
-- gen_random_uuid() (pg_strong_random, as randomBytes): bytes 0–5 and 10–13 of a version-4 UUID
-- (bytes 6 and 8 carry its fixed version and variant bits).
CREATE OR REPLACE FUNCTION mbc_new_id(p_prefix text, p_at timestamp)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  alphabet constant text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  ms bigint := floor(extract(epoch FROM p_at) * 1000)::bigint;
  r bytea := uuid_send(gen_random_uuid());
  b bytea := substring(int8send(ms) FROM 3 FOR 6) || substring(r FROM 1 FOR 6) || substring(r FROM 11 FOR 4);
  out text := p_prefix || '_';
  acc int := 0;
  bits int := 0;
  i int;
BEGIN
  FOR i IN 0..15 LOOP
    acc := ((acc << 8) | get_byte(b, i)) & 4095;
    bits := bits + 8;
    WHILE bits >= 5 LOOP
      out := out || substr(alphabet, ((acc >> (bits - 5)) & 31) + 1, 1);
      bits := bits - 5;
    END LOOP;
  END LOOP;
  RETURN out || substr(alphabet, ((acc << (5 - bits)) & 31) + 1, 1);
END
$$;

-- Fans out up to p_limit committed, undispatched events (createdAt <= p_now) into deliveries —
-- one per enabled, undeleted endpoint of the event's tenant subscribed to its type (no types: all)
-- — and marks them dispatched, in one statement (its own transaction). Events another worker is
-- fanning out are skipped (SKIP LOCKED): concurrent workers split the work. A delivery that
-- exists already (eventId, endpointId) is left as it is. Returns the events taken and the
-- deliveries created.
CREATE OR REPLACE FUNCTION mbc_webhook_dispatch(p_now timestamp, p_limit int)
RETURNS TABLE (events int, created int) LANGUAGE sql VOLATILE AS $$
  WITH ev AS (
    SELECT o.id, o."tenantId", o.type FROM outbox_events o
     WHERE o."dispatchedAt" IS NULL AND o."createdAt" <= p_now
     ORDER BY o.id LIMIT p_limit FOR NO KEY UPDATE SKIP LOCKED
  ), pairs AS (
    SELECT ev.id AS event_id, ev."tenantId" AS tenant_id, ep.id AS endpoint_id
      FROM ev JOIN webhook_endpoints ep
        ON ep."tenantId" = ev."tenantId" AND ep.enabled AND ep."deletedAt" IS NULL
       AND (cardinality(ep.events) = 0 OR ev.type = ANY (ep.events))
     ORDER BY ev.id, ep.id
  ), ins AS (
    INSERT INTO webhook_deliveries (id, "tenantId", "eventId", "endpointId", "createdAt", "updatedAt")
    SELECT mbc_new_id('dlv', p_now), tenant_id, event_id, endpoint_id, p_now, p_now FROM pairs
    ON CONFLICT ("eventId", "endpointId") DO NOTHING
    RETURNING 1
  ), upd AS (
    UPDATE outbox_events o SET "dispatchedAt" = p_now FROM ev WHERE o.id = ev.id RETURNING 1
  )
  SELECT (SELECT count(*) FROM upd)::int, (SELECT count(*) FROM ins)::int
$$;
