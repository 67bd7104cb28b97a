-- Custom properties of events (Plausible's `props`: key/value pairs, bounded in count and size
-- by the ingest) and the scroll depth of a page view (Plausible's engagement events; percent,
-- NULL when unknown). Columns added in place: existing rows get empty arrays and NULL.
--
-- 18.16 has no `ADD COLUMN IF NOT EXISTS`; one statement adds all three, and the migrator
-- treats "column already exists" on an `ADD COLUMN` as done, so a run interrupted after the
-- ALTER but before the ledger row repeats safely.
ALTER TABLE events ADD COLUMN prop_keys Array(String), ADD COLUMN prop_values Array(String), ADD COLUMN scroll_depth Nullable(UInt8);
