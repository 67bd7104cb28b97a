-- Stats API keys, shared by every collector of this database: a key created on one works on
-- all, and a revocation reaches all within `api.key_refresh_secs`.
--
-- Only a SHA-256 of each key is kept (`key_hash`, hex): the key itself is shown once, when it
-- is created, and cannot be recovered from here. `id` is the key's public part (the `<id>` of
-- `tally_<id>_<secret>`), so a presented key is found without comparing it with every row.
--
-- Both tables are append-only: revoking inserts a row into `api_key_revocations` instead of
-- altering `api_keys`, because an ALTER .. UPDATE/DELETE is an asynchronous mutation on 18.16
-- (no `mutations_sync` there) and a revocation must be visible on the next read.
CREATE TABLE IF NOT EXISTS api_keys (
    id String,
    name String,
    sites Array(UInt32),
    key_hash String,
    created DateTime('UTC')
) ENGINE = MergeTree
ORDER BY id;
CREATE TABLE IF NOT EXISTS api_key_revocations (
    id String,
    revoked DateTime('UTC')
) ENGINE = MergeTree
ORDER BY id;
