-- The delivery pump's cycle no longer reads an endpoint's whole backlog (issue 12, target 3).
--
-- Before, mbc_webhook_finish_and_claim found "endpoints with due work" with an EXISTS over
-- webhook_deliveries that the planner could turn into one scan of every due row (a sequential
-- scan + sort + unique: 1,700 rows read for 8 endpoints in the bench, ~6 ms a cycle), and took
-- each endpoint's deliveries with a bitmap scan that read all its pending rows before the LIMIT.
-- A cycle's cost grew with the backlog — after an endpoint outage with 100,000 queued
-- deliveries, every cycle of every worker read them all — and two workers, which run more cycles
-- for the same deliveries, paid it twice as often.
--
-- Now both ask mbc_webhook_due_ids: at most p_n due deliveries of ONE endpoint, each kind of due
-- found by a bounded index range (nothing is read past what is returned):
--   1. expired leases (a crashed worker's attempts): status 'delivering', lastAttemptAt < floor;
--      at most the endpoint's concurrency limit plus crashed ones;
--   2. due retries: status pending/failed, nextAttemptAt <= now, oldest due first;
--   3. new deliveries: status pending/failed, nextAttemptAt NULL, oldest first (ids sort by time).
-- (The same set as the OR condition it replaces: the three parts are disjoint.) Retries come before
-- new deliveries, so a steady stream of new events never starves a retry that is due.
CREATE INDEX "webhook_deliveries_due_idx" ON "webhook_deliveries" ("endpointId", "nextAttemptAt" NULLS FIRST, "id")
  WHERE "status" IN ('pending', 'failed');

-- The pump's idle probe ("is anything due at all?", mbc_webhook_any_due below) the same way: before,
-- it walked webhook_deliveries_open_idx (every pending, failed and delivering row, in id order)
-- until a row matched, so with an endpoint's deliveries all retrying later it read every one of
-- them at each wake-up (each commit, each tick) of each worker. Now two bounded lookups: a new
-- delivery or a retry due now (wake_idx: pending/failed by due time, a new one counting as due
-- since ever — an expression no per-endpoint lookup above can use instead of due_idx), and an
-- expired lease (leased_idx: only the deliveries in flight, per endpoint — it also serves the
-- per-endpoint lease count and lookup). open_idx had no other use these do not serve (the minutely
-- sweep's stranded-delivery query has the same conditions).
DROP INDEX IF EXISTS "webhook_deliveries_open_idx";
CREATE INDEX "webhook_deliveries_wake_idx" ON "webhook_deliveries" ((COALESCE("nextAttemptAt", '-infinity'::timestamp)))
  WHERE "status" IN ('pending', 'failed');
CREATE INDEX "webhook_deliveries_leased_idx" ON "webhook_deliveries" ("endpointId", "lastAttemptAt") WHERE "status" = 'delivering';

CREATE OR REPLACE FUNCTION mbc_webhook_any_due(p_now timestamp, p_floor timestamp)
RETURNS boolean LANGUAGE sql STABLE AS $$
  -- Scalar subqueries in index order (not EXISTS): with a parameter for "now" the planner guesses
  -- a third of the rows match and would take a sequential scan to find the first — which reads the
  -- whole table when nothing is due, the usual case.
  SELECT (SELECT true FROM webhook_deliveries d
           WHERE d.status IN ('pending', 'failed') AND COALESCE(d."nextAttemptAt", '-infinity'::timestamp) <= p_now
           ORDER BY COALESCE(d."nextAttemptAt", '-infinity'::timestamp) LIMIT 1) IS NOT NULL
      OR (SELECT true FROM webhook_deliveries d
           WHERE d.status = 'delivering' AND d."lastAttemptAt" < p_floor
           ORDER BY d."endpointId", d."lastAttemptAt" LIMIT 1) IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION mbc_webhook_due_ids(p_endpoint text, p_now timestamp, p_floor timestamp, p_n int)
RETURNS TABLE (id text) LANGUAGE sql STABLE AS $$
  (SELECT d.id FROM webhook_deliveries d
    WHERE d."endpointId" = p_endpoint AND d.status = 'delivering' AND d."lastAttemptAt" < p_floor
    ORDER BY d."lastAttemptAt"
    LIMIT p_n)
  UNION ALL
  (SELECT d.id FROM webhook_deliveries d
    WHERE d."endpointId" = p_endpoint AND d.status IN ('pending', 'failed') AND d."nextAttemptAt" <= p_now
    ORDER BY d."nextAttemptAt" NULLS FIRST, d.id
    LIMIT p_n)
  UNION ALL
  (SELECT d.id FROM webhook_deliveries d
    WHERE d."endpointId" = p_endpoint AND d.status IN ('pending', 'failed') AND d."nextAttemptAt" IS NULL
    ORDER BY d."nextAttemptAt" NULLS FIRST, d.id
    LIMIT p_n)
  LIMIT p_n
$$;

-- The cycle itself, as in 20261206030000_webhook_finish_and_claim, with the two lookups above.
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
  v_ids text[] := '{}';
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
                     AND EXISTS (SELECT 1 FROM mbc_webhook_due_ids(e.id, p_now, p_floor, 1))
                     AND (SELECT count(*) FROM webhook_deliveries l
                           WHERE l."endpointId" = e.id AND l.status = 'delivering' AND l."lastAttemptAt" >= p_floor) < p_limit
                   ORDER BY random()
                   LIMIT p_take) c
           ORDER BY c.id) c;

  IF cardinality(v_locked) > 0 THEN
    -- Per locked endpoint, still enabled (it may have been disabled since the statement above), as
    -- many due deliveries as it has free lease slots (fresh snapshot: this statement runs after the
    -- locks were granted). Their ids go to the UPDATE as an array, so it reaches them by primary
    -- key whatever the table's statistics say.
    SELECT COALESCE(array_agg(y.id), '{}'::text[]) INTO v_ids
      FROM (SELECT x.id FROM unnest(v_locked) AS ep(id)
              JOIN webhook_endpoints e ON e.id = ep.id AND e.enabled AND e."deletedAt" IS NULL
              CROSS JOIN LATERAL (SELECT GREATEST(0, p_limit - count(*)::int) AS free FROM webhook_deliveries l
                                   WHERE l."endpointId" = ep.id AND l.status = 'delivering' AND l."lastAttemptAt" >= p_floor) f
              CROSS JOIN LATERAL mbc_webhook_due_ids(ep.id, p_now, p_floor, f.free) x
             LIMIT p_take) y;
  END IF;

  IF cardinality(v_ids) > 0 THEN
    RETURN QUERY
      WITH claimed AS (
        -- Each delivery is checked again as it is now (a row another statement changed since is
        -- re-read). The UPDATE reads only the claimed rows, by primary key; endpoint and event
        -- are looked up for what it returns. (The check is a CASE so that the planner cannot match it
        -- to the partial indexes' predicates and scan a whole partial index instead — it did, with
        -- a table never analysed.)
        UPDATE webhook_deliveries d
           SET status = 'delivering', "lastAttemptAt" = p_now, "updatedAt" = p_now
         WHERE d.id = ANY (v_ids)
           AND CASE WHEN d.status IN ('pending', 'failed') THEN d."nextAttemptAt" IS NULL OR d."nextAttemptAt" <= p_now
                    WHEN d.status = 'delivering' THEN d."lastAttemptAt" < p_floor
                    ELSE false END
        RETURNING d.id, d."tenantId", d."eventId", d."endpointId", d.status, d.attempts, d."nextAttemptAt", d."lastAttemptAt",
                  d."lastStatus", d."deliveredAt", d."createdAt", d."updatedAt")
      SELECT 'claimed'::text, c.id, c."tenantId", c."eventId", c."endpointId", c.status, c.attempts,
             c."nextAttemptAt" AT TIME ZONE 'UTC', c."lastAttemptAt" AT TIME ZONE 'UTC', c."lastStatus",
             c."deliveredAt" AT TIME ZONE 'UTC', c."createdAt" AT TIME ZONE 'UTC', c."updatedAt" AT TIME ZONE 'UTC',
             e.url, e.description, e.events, e.enabled, e."disabledReason", e."secretEnc", e."previousSecretEnc",
             e."previousSecretExpiresAt" AT TIME ZONE 'UTC', e."createdAt" AT TIME ZONE 'UTC', e."updatedAt" AT TIME ZONE 'UTC',
             ev."mailboxId", ev.type, ev.seq::text, ev.refs::jsonb, ev."dataEnc",
             ev."createdAt" AT TIME ZONE 'UTC', ev."dispatchedAt" AT TIME ZONE 'UTC'
        -- One primary-key lookup per claimed row (LATERAL … LIMIT 1 is never turned into a join
        -- that scans the table: with stale statistics it was, a hash join over every event).
        FROM claimed c
        CROSS JOIN LATERAL (SELECT * FROM webhook_endpoints x WHERE x.id = c."endpointId" LIMIT 1) e
        CROSS JOIN LATERAL (SELECT * FROM outbox_events y WHERE y.id = c."eventId" LIMIT 1) ev;
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
