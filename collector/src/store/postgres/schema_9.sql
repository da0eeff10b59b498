-- Version 9: a generation per dirty hour (store/sqlite/schema_rollup_gen.sql).
-- Every mark sets it to a fresh value of the sequence, and a rollup read
-- outside the write lock clears the mark only if its generation is still
-- the one its read snapshot saw. A sequence rather than `gen + 1`: a mark
-- deleted by one collector's rebuild and made again starts afresh, and must
-- not match the generation another collector's rebuild read before.
CREATE SEQUENCE rollup_dirty_gen;
ALTER TABLE rollup_dirty ADD COLUMN gen BIGINT NOT NULL DEFAULT nextval('rollup_dirty_gen');
