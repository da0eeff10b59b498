-- The admin console (issue 13 item 6): an OPD's life cycle. `disabled`:
-- its agents are refused and it takes no new ones; `removed`: the same,
-- and it is gone from the status pages, while its results, reports and
-- audit entries stay.
ALTER TABLE opd ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
    CHECK (state IN ('active', 'disabled', 'removed'));
