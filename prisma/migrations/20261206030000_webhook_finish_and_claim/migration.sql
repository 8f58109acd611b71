-- The delivery pump's cycle in one round trip (issue 12, target 3): store a batch of attempt
-- results, then claim due deliveries for the slots that frees (and any other free ones), in one
-- statement. Before, a cycle was BEGIN + lock statement + claim statement + COMMIT plus a
-- separate result statement; the pump also waited for releases to gather before claiming again.
--
-- p_results: JSON array of results (WebhookRepository.finishAndClaim builds it) or NULL.
-- p_take: how many deliveries to claim at most (0: results only).
-- Returns one row per updated delivery (kind 'finished', only `id` set), one per claimed
-- delivery with its endpoint and event (kind 'claimed'), and when endpoints were skipped because
-- another worker was claiming them, one row of kind 'locked_out' with their number in `attempts`.
--
-- Per-endpoint concurrency holds cluster-wide as with the two-statement claim it replaces:
--  1. try-lock (transaction-level advisory lock, key (p_lock_key, hashtext(endpoint id)), the lock
--     every claim path takes) the endpoints that have due work and, by this snapshot, a free
--     lease slot; one another worker holds is skipped, not waited for;
--  2. the claim statement runs with a fresh snapshot (a VOLATILE plpgsql function takes one per
--     statement under READ COMMITTED), so it sees every claim committed before the lock was
--     granted, and leases per locked endpoint at most p_limit - live leases due deliveries.
-- The locks are held until the calling statement's transaction commits. Results written in step 0
-- count already (same transaction): a finished attempt frees its endpoint slot for this claim.
CREATE OR REPLACE FUNCTION mbc_webhook_finish_and_claim(
  p_results json,
  p_now timestamp,
  p_floor timestamp,
  p_limit int,
  p_take int,
  p_lock_key int
) RETURNS TABLE (
  kind text,
  id text, "tenantId" text, "eventId" text, "endpointId" text, status text, attempts int,
  "nextAttemptAt" timestamptz, "lastAttemptAt" timestamptz, "lastStatus" int, "deliveredAt" timestamptz,
  "createdAt" timestamptz, "updatedAt" timestamptz,
  e_url text, e_description text, e_events text[], e_enabled boolean, "e_disabledReason" text,
  "e_secretEnc" bytea, "e_previousSecretEnc" bytea, "e_previousSecretExpiresAt" timestamptz,
  "e_createdAt" timestamptz, "e_updatedAt" timestamptz,
  "ev_mailboxId" text, ev_type text, ev_seq text, ev_refs jsonb, "ev_dataEnc" bytea,
  "ev_createdAt" timestamptz, "ev_dispatchedAt" timestamptz
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  v_locked text[];
  v_candidates int;
BEGIN
  IF p_results IS NOT NULL THEN
    -- Each attempt is appended to the log; a delivery is updated only while still `delivering`
    -- (a replay meanwhile wins).
    RETURN QUERY
      WITH i AS (
        SELECT * FROM json_to_recordset(p_results)
          AS t(id text, status text, attempts int, next timestamp, last int, delivered timestamp, aid text, code int, latency int, snippet text, error text, at timestamp)),
      logged AS (
        INSERT INTO delivery_attempts (id, "deliveryId", "attemptNo", "statusCode", "latencyMs", "responseSnippet", error, "createdAt")
        SELECT i.aid, i.id, COALESCE((SELECT max(a."attemptNo") FROM delivery_attempts a WHERE a."deliveryId" = i.id), 0) + 1,
               i.code, i.latency, i.snippet, i.error, i.at
          FROM i WHERE i.aid IS NOT NULL),
      done AS (
        UPDATE webhook_deliveries d
           SET status = i.status, attempts = i.attempts, "nextAttemptAt" = i.next, "lastStatus" = i.last,
               "deliveredAt" = COALESCE(i.delivered, d."deliveredAt"), "updatedAt" = p_now
          FROM i
         WHERE d.id = i.id AND d.status = 'delivering'
        RETURNING d.id)
      SELECT 'finished'::text, done.id, NULL::text, NULL::text, NULL::text, NULL::text, NULL::int,
             NULL::timestamptz, NULL::timestamptz, NULL::int, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz,
             NULL::text, NULL::text, NULL::text[], NULL::boolean, NULL::text, NULL::bytea, NULL::bytea, NULL::timestamptz,
             NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::text, NULL::text, NULL::jsonb, NULL::bytea,
             NULL::timestamptz, NULL::timestamptz
        FROM done;
  END IF;

  IF p_take IS NULL OR p_take <= 0 THEN
    RETURN;
  END IF;

  SELECT COALESCE(array_agg(c.id) FILTER (WHERE c.locked), '{}'::text[]), count(*)::int
    INTO v_locked, v_candidates
    FROM (SELECT c.id, pg_try_advisory_xact_lock(p_lock_key, hashtext(c.id)) AS locked
            FROM (SELECT e.id FROM webhook_endpoints e
                   WHERE e.enabled AND e."deletedAt" IS NULL
                     AND EXISTS (SELECT 1 FROM webhook_deliveries d
                                  WHERE d."endpointId" = e.id
                                    AND ((d.status IN ('pending', 'failed') AND (d."nextAttemptAt" IS NULL OR d."nextAttemptAt" <= p_now))
                                         OR (d.status = 'delivering' AND d."lastAttemptAt" < p_floor)))
                     AND (SELECT count(*) FROM webhook_deliveries l
                           WHERE l."endpointId" = e.id AND l.status = 'delivering' AND l."lastAttemptAt" >= p_floor) < p_limit
                   ORDER BY random()
                   LIMIT p_take) c
           ORDER BY c.id) c;

  IF cardinality(v_locked) > 0 THEN
    RETURN QUERY
      WITH cand AS (
        SELECT x.id FROM unnest(v_locked) AS ep(id) CROSS JOIN LATERAL (
          SELECT c.id FROM webhook_deliveries c
           WHERE c."endpointId" = ep.id
             AND ((c.status IN ('pending', 'failed') AND (c."nextAttemptAt" IS NULL OR c."nextAttemptAt" <= p_now))
                  OR (c.status = 'delivering' AND c."lastAttemptAt" < p_floor))
           LIMIT GREATEST(0, p_limit - (
             SELECT count(*)::int FROM webhook_deliveries l
              WHERE l."endpointId" = ep.id AND l.status = 'delivering' AND l."lastAttemptAt" >= p_floor))) x
        LIMIT p_take),
      claimed AS (
        -- The endpoint is checked again here: it may have been disabled since step 1.
        UPDATE webhook_deliveries d
           SET status = 'delivering', "lastAttemptAt" = p_now, "updatedAt" = p_now
          FROM cand, webhook_endpoints e, outbox_events ev
         WHERE d.id = cand.id AND e.id = d."endpointId" AND ev.id = d."eventId" AND e.enabled AND e."deletedAt" IS NULL
        RETURNING d.id, d."tenantId", d."eventId", d."endpointId", d.status, d.attempts,
                  d."nextAttemptAt" AT TIME ZONE 'UTC' AS a1, d."lastAttemptAt" AT TIME ZONE 'UTC' AS a2, d."lastStatus",
                  d."deliveredAt" AT TIME ZONE 'UTC' AS a3, d."createdAt" AT TIME ZONE 'UTC' AS a4, d."updatedAt" AT TIME ZONE 'UTC' AS a5,
                  e.url, e.description, e.events, e.enabled, e."disabledReason", e."secretEnc", e."previousSecretEnc",
                  e."previousSecretExpiresAt" AT TIME ZONE 'UTC' AS a6, e."createdAt" AT TIME ZONE 'UTC' AS a7, e."updatedAt" AT TIME ZONE 'UTC' AS a8,
                  ev."mailboxId", ev.type, ev.seq::text AS seq, ev.refs::jsonb AS refs, ev."dataEnc",
                  ev."createdAt" AT TIME ZONE 'UTC' AS a9, ev."dispatchedAt" AT TIME ZONE 'UTC' AS a10)
      SELECT 'claimed'::text, c.id, c."tenantId", c."eventId", c."endpointId", c.status, c.attempts,
             c.a1, c.a2, c."lastStatus", c.a3, c.a4, c.a5,
             c.url, c.description, c.events, c.enabled, c."disabledReason", c."secretEnc", c."previousSecretEnc", c.a6, c.a7, c.a8,
             c."mailboxId", c.type, c.seq, c.refs, c."dataEnc", c.a9, c.a10
        FROM claimed c;
  END IF;

  IF v_candidates > cardinality(v_locked) THEN
    RETURN QUERY SELECT 'locked_out'::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, v_candidates - cardinality(v_locked),
             NULL::timestamptz, NULL::timestamptz, NULL::int, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz,
             NULL::text, NULL::text, NULL::text[], NULL::boolean, NULL::text, NULL::bytea, NULL::bytea, NULL::timestamptz,
             NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::text, NULL::text, NULL::jsonb, NULL::bytea,
             NULL::timestamptz, NULL::timestamptz;
  END IF;
END
$$;
