-- Operators' accounts, their sessions, shared links and one-time sign-in tokens, shared by
-- every collector of this database (a session opened on one collector works on all).
--
-- Every table is append-only, as `0006_api_keys.sql`: an ALTER .. UPDATE/DELETE is an
-- asynchronous mutation on 18.16 and a change (a new password, a sign-out, a revocation) must be
-- visible on the next read.
--
-- `users`: one row per change of an account. The row with the highest `version` (milliseconds
-- since 1970, so two changes in one second still order) is the account; `removed = 1` ends it.
-- `password_hash` is an Argon2id PHC string (salt and parameters included), '' for an account
-- that cannot sign in with a password (the demo admin). A session names the `version` of the
-- account it was opened for, so any newer row (a new password, removal, other sites) ends every
-- session opened before it.
CREATE TABLE IF NOT EXISTS users (
    name String,
    password_hash String,
    admin UInt8,
    sites Array(UInt32),
    removed UInt8,
    version UInt64,
    changed DateTime('UTC')
) ENGINE = MergeTree
ORDER BY (name, version);
-- Sessions: only a SHA-256 of the cookie's token is kept. Partitioned by the month they expire
-- in, so the pruner drops whole months once every session in them has expired.
CREATE TABLE IF NOT EXISTS sessions (
    token_hash String,
    user String,
    user_version UInt64,
    created DateTime('UTC'),
    expires DateTime('UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(expires)
ORDER BY token_hash;
-- Sign-outs: a session listed here is over. `expires` is the session's, so the row goes with it.
CREATE TABLE IF NOT EXISTS session_ends (
    token_hash String,
    ended DateTime('UTC'),
    expires DateTime('UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(expires)
ORDER BY token_hash;
-- Shared links: a read-only view of one site for whoever holds `token`. The token is kept as it
-- is (an admin may copy a live link again); `password_hash` is Argon2id or '' for none.
CREATE TABLE IF NOT EXISTS shared_links (
    id String,
    site UInt32,
    name String,
    password_hash String,
    token String,
    created DateTime('UTC')
) ENGINE = MergeTree
ORDER BY id;
CREATE TABLE IF NOT EXISTS shared_link_revocations (
    id String,
    revoked DateTime('UTC')
) ENGINE = MergeTree
ORDER BY id;
-- One-time sign-in tokens (the demo admin's link): SHA-256 of the token, whom it signs in, until
-- when; a row in `signin_token_uses` spends it. Both pruned by month like the sessions.
CREATE TABLE IF NOT EXISTS signin_tokens (
    token_hash String,
    user String,
    expires DateTime('UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(expires)
ORDER BY token_hash;
CREATE TABLE IF NOT EXISTS signin_token_uses (
    token_hash String,
    nonce String,
    used DateTime('UTC'),
    expires DateTime('UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(expires)
ORDER BY token_hash;
