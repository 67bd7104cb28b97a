-- The secrets behind visitor keys, now one per time zone and local date (a site's reports count
-- visitors per local day, so its key changes at the site's local midnight, not at 00:00 UTC).
-- Shared by every collector writing to this database; each uses the earliest `created` of a
-- (zone, day), ties broken by `secret`.
--
-- `expires` is the Unix time at which the local day began, plus 48 hours. The table is
-- partitioned by it and tally drops every partition whose `expires` has passed (DROP PARTITION,
-- immediate), so each secret is deleted 48 hours after its day began in its own zone. After that
-- no stored visitor key can be recomputed from a person's address and browser, by anyone.
CREATE TABLE IF NOT EXISTS day_secrets (
    zone String,
    day Date,
    secret String,
    created DateTime('UTC'),
    expires UInt32
) ENGINE = MergeTree
PARTITION BY expires
ORDER BY (zone, day, created, secret);

-- The UTC-day secrets of migration 2 go now rather than at their usual 48 hours: nothing uses
-- them any more. Visitor keys therefore change once at this upgrade, within a day: a visitor
-- seen before and after it counts as two on that day.
DROP TABLE IF EXISTS visitor_secrets;
