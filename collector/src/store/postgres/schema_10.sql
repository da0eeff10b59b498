-- Day partitions made by two collectors at once (both starting just after
-- midnight UTC): the second waits on the advisory lock, but its catalog view
-- can be older than the first one's commit, so its existence check still
-- says "missing" and CREATE TABLE fails with "already exists", which stopped
-- that collector from starting. The partition made by the other is the
-- partition wanted: "already exists" now means done.
CREATE OR REPLACE FUNCTION pantau_result_day(day_start BIGINT) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    part TEXT := 'result_d' || (day_start / 86400000)::TEXT;
    day_end BIGINT := day_start + 86400000;
BEGIN
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(7061746175);
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN;
    END IF;
    BEGIN
        EXECUTE format('CREATE TABLE %I (LIKE result INCLUDING DEFAULTS)', part);
        EXECUTE format('INSERT INTO %I SELECT * FROM result_default
                        WHERE observed_at_ms >= %s AND observed_at_ms < %s', part, day_start, day_end);
        EXECUTE format('DELETE FROM result_default WHERE observed_at_ms >= %s AND observed_at_ms < %s',
                       day_start, day_end);
        EXECUTE format('ALTER TABLE result ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                       part, day_start, day_end);
    EXCEPTION WHEN duplicate_table THEN
        RETURN;
    END;
END $$;
