-- A generation per dirty hour: every mark bumps it, and a rollup read
-- outside the write lock clears the mark only if its generation is still
-- the one its read snapshot saw (results stored meanwhile keep it dirty).
ALTER TABLE rollup_dirty ADD COLUMN gen INTEGER NOT NULL DEFAULT 0;
