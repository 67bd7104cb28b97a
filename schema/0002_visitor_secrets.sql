-- The daily secrets behind visitor keys, shared by every collector writing to this database.
-- One partition per day: the secret of day D is dropped (DROP PARTITION, immediate) once day
-- D+2 begins, 48 hours after it came into use. After that no stored visitor key can be
-- recomputed from a person's address and browser, by anyone.
CREATE TABLE IF NOT EXISTS visitor_secrets (
    day Date,
    secret String,
    created DateTime
) ENGINE = MergeTree
PARTITION BY day
ORDER BY (day, created, secret);
