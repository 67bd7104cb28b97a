//! The tables of `schema/0008_accounts.sql`: accounts, sessions, shared links and one-time
//! sign-in tokens, read and appended to. Every change is an inserted row (see the schema for
//! why); reads reduce the rows to the current state here, in plain SELECTs without joins, as
//! [`crate::api::keystore`] does.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::secret::{self, RandomError};
use crate::store::Client;

/// Most rows read from one table; far beyond any real installation, it bounds memory.
const MAX_ROWS: u64 = 200_000;

/// Longest a read or write may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// How long a session lasts from sign-in (it is not extended by use: an operator signs in again
/// every two weeks).
pub const SESSION_SECS: u32 = 14 * 24 * 3600;

/// Longest account name.
pub const MAX_NAME_CHARS: usize = 64;

/// What can go wrong with the tables.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// ClickHouse refused or failed.
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    /// ClickHouse did not answer in time.
    #[error("ClickHouse did not answer within {0:?}")]
    Timeout(Duration),
    /// No random bytes.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// A request that makes no sense (a bad name, an unknown account).
    #[error("{0}")]
    Invalid(String),
}

/// An account as it stands (its latest row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The name it signs in with.
    pub name: String,
    /// Argon2id PHC string; `""` when it has no password.
    pub password_hash: String,
    /// Sees every configured site and manages keys and links.
    pub admin: bool,
    /// The sites it sees (admins: ignored, they see all).
    pub sites: Vec<u32>,
    /// Removed: no longer signs in, its sessions are over.
    pub removed: bool,
    /// Milliseconds since 1970 of this row: orders the rows, and binds sessions to it.
    pub version: u64,
    /// When it was last changed (Unix seconds).
    pub changed: u32,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The account.
    pub user: String,
    /// The account's `version` when the session was opened; a newer account row ends it.
    pub user_version: u64,
    /// Unix seconds.
    pub created: u32,
    /// Unix seconds.
    pub expires: u32,
}

/// A shared link as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Public id (16 hex digits), shown to admins.
    pub id: String,
    /// The one site it shows.
    pub site: u32,
    /// What the admin called it.
    pub name: String,
    /// Argon2id of its password; `None` for a public link.
    pub password_hash: Option<String>,
    /// The secret of its URL, `/share/<token>`.
    pub token: String,
    /// Unix seconds.
    pub created: u32,
    /// When it was first revoked, if it was.
    pub revoked: Option<u32>,
}

#[derive(Row, Serialize, Deserialize)]
struct UserRow {
    name: String,
    password_hash: String,
    admin: u8,
    sites: Vec<u32>,
    removed: u8,
    version: u64,
    changed: u32,
}

#[derive(Row, Serialize, Deserialize)]
struct SessionRow {
    token_hash: String,
    user: String,
    user_version: u64,
    created: u32,
    expires: u32,
}

#[derive(Row, Serialize, Deserialize)]
struct SessionEndRow {
    token_hash: String,
    ended: u32,
    expires: u32,
}

#[derive(Row, Serialize, Deserialize)]
struct LinkRow {
    id: String,
    site: u32,
    name: String,
    password_hash: String,
    token: String,
    created: u32,
}

#[derive(Row, Serialize, Deserialize)]
struct LinkRevocationRow {
    id: String,
    revoked: u32,
}

#[derive(Row, Serialize, Deserialize)]
struct OnceRow {
    token_hash: String,
    user: String,
    expires: u32,
}

#[derive(Row, Serialize, Deserialize)]
struct OnceUseRow {
    token_hash: String,
    nonce: String,
    used: u32,
    expires: u32,
}

/// Everything the read side keeps in memory, as read at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Every account by name, removed ones included.
    pub users: HashMap<String, User>,
    /// Unexpired sessions by the hex SHA-256 of their token.
    pub sessions: HashMap<String, Session>,
    /// Sessions signed out.
    pub ended: HashSet<String>,
    /// Shared links by their token, revoked ones included.
    pub links: HashMap<String, Link>,
}

/// Whether `name` may name an account: 1 to 64 letters, digits and `._@-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
}

/// The account tables of one database.
#[derive(Clone)]
pub struct AccountTables {
    client: Client,
}

/// Milliseconds since 1970, never less than `now` seconds.
fn now_ms(now: u32) -> u64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    ms.max(u64::from(now) * 1000)
}

impl AccountTables {
    /// The tables in `client`'s database (migration 8 must have run).
    pub fn new(client: Client) -> Self {
        AccountTables { client }
    }

    async fn insert<R: clickhouse::RowOwned + clickhouse::RowWrite>(
        &self,
        table: &str,
        row: &R,
    ) -> Result<(), StoreError> {
        timed(async {
            let mut insert = self.client.insert::<R>(table).await?;
            insert.write(row).await?;
            insert.end().await
        })
        .await
    }

    /// Every account as it stands, by name.
    pub async fn users(&self) -> Result<HashMap<String, User>, StoreError> {
        let rows = timed(
            self.client
                .query(
                    "SELECT name, password_hash, admin, sites, removed, version, \
                     toUInt32(changed) AS changed FROM users ORDER BY name, version LIMIT ?",
                )
                .bind(MAX_ROWS)
                .fetch_all::<UserRow>(),
        )
        .await?;
        let mut users = HashMap::new();
        for r in rows {
            // Ordered by version: the last row of a name wins.
            users.insert(
                r.name.clone(),
                User {
                    name: r.name,
                    password_hash: r.password_hash,
                    admin: r.admin != 0,
                    sites: r.sites,
                    removed: r.removed != 0,
                    version: r.version,
                    changed: r.changed,
                },
            );
        }
        Ok(users)
    }

    /// The account `name` if it exists and is not removed.
    pub async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        Ok(self.users().await?.remove(name).filter(|u| !u.removed))
    }

    /// Writes a new row for an account (a new one, a new password, removal).
    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        let row = UserRow {
            name: user.name.clone(),
            password_hash: user.password_hash.clone(),
            admin: u8::from(user.admin),
            sites: user.sites.clone(),
            removed: u8::from(user.removed),
            version: user.version,
            changed: user.changed,
        };
        self.insert("users", &row).await
    }

    /// Adds account `name`; refused when one of that name exists.
    pub async fn add_user(
        &self,
        name: &str,
        password_hash: String,
        admin: bool,
        sites: &[u32],
        now: u32,
    ) -> Result<User, StoreError> {
        if !valid_name(name) {
            return Err(StoreError::Invalid(format!(
                "an account name is 1 to {MAX_NAME_CHARS} letters, digits and ._@-"
            )));
        }
        if self.user(name).await?.is_some() {
            return Err(StoreError::Invalid(format!(
                "account {name:?} exists already"
            )));
        }
        let mut sites = sites.to_vec();
        sites.sort_unstable();
        sites.dedup();
        let user = User {
            name: name.to_string(),
            password_hash,
            admin,
            sites,
            removed: false,
            version: now_ms(now),
            changed: now,
        };
        self.put_user(&user).await?;
        Ok(user)
    }

    /// A new row for an existing account, changed by `change`: every session opened before it
    /// ends.
    pub async fn change_user(
        &self,
        name: &str,
        now: u32,
        change: impl FnOnce(&mut User),
    ) -> Result<User, StoreError> {
        let Some(mut user) = self.user(name).await? else {
            return Err(StoreError::Invalid(format!("no account {name:?}")));
        };
        change(&mut user);
        // Strictly newer than the row it replaces, even within one millisecond.
        user.version = now_ms(now).max(user.version + 1);
        user.changed = now;
        self.put_user(&user).await?;
        Ok(user)
    }

    /// Every session that has not expired at `now`, and the sign-outs.
    pub async fn sessions(
        &self,
        now: u32,
    ) -> Result<(HashMap<String, Session>, HashSet<String>), StoreError> {
        let rows = timed(
            self.client
                .query(
                    "SELECT token_hash, user, user_version, toUInt32(created) AS created, \
                     toUInt32(expires) AS expires FROM sessions \
                     WHERE expires > toDateTime(?, 'UTC') LIMIT ?",
                )
                .bind(now)
                .bind(MAX_ROWS)
                .fetch_all::<SessionRow>(),
        )
        .await?;
        let ends = timed(
            self.client
                .query(
                    "SELECT token_hash, toUInt32(ended) AS ended, toUInt32(expires) AS expires \
                     FROM session_ends WHERE expires > toDateTime(?, 'UTC') LIMIT ?",
                )
                .bind(now)
                .bind(MAX_ROWS)
                .fetch_all::<SessionEndRow>(),
        )
        .await?;
        let sessions = rows
            .into_iter()
            .map(|r| {
                (
                    r.token_hash,
                    Session {
                        user: r.user,
                        user_version: r.user_version,
                        created: r.created,
                        expires: r.expires,
                    },
                )
            })
            .collect();
        Ok((sessions, ends.into_iter().map(|e| e.token_hash).collect()))
    }

    /// Opens a session for `user`; returns its token (for the cookie) and what was stored.
    pub async fn open_session(
        &self,
        user: &User,
        now: u32,
    ) -> Result<(String, String, Session), StoreError> {
        let token = secret::token()?;
        let hash = secret::sha256_hex(&token);
        let session = Session {
            user: user.name.clone(),
            user_version: user.version,
            created: now,
            expires: now.saturating_add(SESSION_SECS),
        };
        let row = SessionRow {
            token_hash: hash.clone(),
            user: session.user.clone(),
            user_version: session.user_version,
            created: session.created,
            expires: session.expires,
        };
        self.insert("sessions", &row).await?;
        Ok((token, hash, session))
    }

    /// Ends the session with this token hash everywhere.
    pub async fn end_session(
        &self,
        token_hash: &str,
        expires: u32,
        now: u32,
    ) -> Result<(), StoreError> {
        let row = SessionEndRow {
            token_hash: token_hash.to_string(),
            ended: now,
            expires,
        };
        self.insert("session_ends", &row).await
    }

    /// Every shared link, oldest first, with its revocation.
    pub async fn links(&self) -> Result<Vec<Link>, StoreError> {
        let rows = timed(
            self.client
                .query(
                    "SELECT id, site, name, password_hash, token, toUInt32(created) AS created \
                     FROM shared_links ORDER BY created, id LIMIT ?",
                )
                .bind(MAX_ROWS)
                .fetch_all::<LinkRow>(),
        )
        .await?;
        let revocations = timed(
            self.client
                .query(
                    "SELECT id, toUInt32(min(revoked)) AS revoked FROM shared_link_revocations \
                     GROUP BY id LIMIT ?",
                )
                .bind(MAX_ROWS)
                .fetch_all::<LinkRevocationRow>(),
        )
        .await?;
        let revoked: HashMap<String, u32> =
            revocations.into_iter().map(|r| (r.id, r.revoked)).collect();
        Ok(rows
            .into_iter()
            .map(|r| Link {
                revoked: revoked.get(&r.id).copied(),
                password_hash: (!r.password_hash.is_empty()).then_some(r.password_hash),
                id: r.id,
                site: r.site,
                name: r.name,
                token: r.token,
                created: r.created,
            })
            .collect())
    }

    /// Makes a shared link for `site`; `password_hash` from [`secret::hash_password`].
    pub async fn create_link(
        &self,
        site: u32,
        name: &str,
        password_hash: Option<String>,
        now: u32,
    ) -> Result<Link, StoreError> {
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(
                "the name must be at most 100 characters, without control characters".into(),
            ));
        }
        let link = Link {
            id: secret::short_id()?,
            site,
            name: name.to_string(),
            password_hash,
            token: secret::token()?,
            created: now,
            revoked: None,
        };
        let row = LinkRow {
            id: link.id.clone(),
            site,
            name: link.name.clone(),
            password_hash: link.password_hash.clone().unwrap_or_default(),
            token: link.token.clone(),
            created: now,
        };
        self.insert("shared_links", &row).await?;
        Ok(link)
    }

    /// Revokes link `id`; `false` when there is no such link.
    pub async fn revoke_link(&self, id: &str, now: u32) -> Result<bool, StoreError> {
        let Some(link) = self.links().await?.into_iter().find(|l| l.id == id) else {
            return Ok(false);
        };
        if link.revoked.is_none() {
            let row = LinkRevocationRow {
                id: link.id,
                revoked: now,
            };
            self.insert("shared_link_revocations", &row).await?;
        }
        Ok(true)
    }

    /// Everything the read side keeps in memory.
    pub async fn snapshot(&self, now: u32) -> Result<Snapshot, StoreError> {
        let users = self.users().await?;
        let (sessions, ended) = self.sessions(now).await?;
        let links = self
            .links()
            .await?
            .into_iter()
            .map(|l| (l.token.clone(), l))
            .collect();
        Ok(Snapshot {
            users,
            sessions,
            ended,
            links,
        })
    }

    /// Makes a one-time sign-in token for `user`, valid for `valid_secs`.
    pub async fn create_once(
        &self,
        user: &str,
        now: u32,
        valid_secs: u32,
    ) -> Result<String, StoreError> {
        let token = secret::token()?;
        let row = OnceRow {
            token_hash: secret::sha256_hex(&token),
            user: user.to_string(),
            expires: now.saturating_add(valid_secs),
        };
        self.insert("signin_tokens", &row).await?;
        Ok(token)
    }

    /// Spends a one-time token: the account it signs in, or `None` when it is unknown, expired
    /// or spent. Two collectors spending one token at once both write a use; the earliest use
    /// (then the smallest random nonce) wins, and only its writer signs in.
    pub async fn consume_once(&self, token: &str, now: u32) -> Result<Option<String>, StoreError> {
        if !secret::is_token(token) {
            return Ok(None);
        }
        let hash = secret::sha256_hex(token);
        let rows = timed(
            self.client
                .query(
                    "SELECT token_hash, user, toUInt32(expires) AS expires FROM signin_tokens \
                     WHERE token_hash = ? AND expires > toDateTime(?, 'UTC') LIMIT 1",
                )
                .bind(&hash)
                .bind(now)
                .fetch_all::<OnceRow>(),
        )
        .await?;
        let Some(once) = rows.into_iter().next() else {
            return Ok(None);
        };
        if !self.uses(&hash).await?.is_empty() {
            return Ok(None);
        }
        let nonce = secret::short_id()?;
        let row = OnceUseRow {
            token_hash: hash.clone(),
            nonce: nonce.clone(),
            used: now,
            expires: once.expires,
        };
        self.insert("signin_token_uses", &row).await?;
        let uses = self.uses(&hash).await?;
        let first = uses
            .iter()
            .min_by(|a, b| (a.used, &a.nonce).cmp(&(b.used, &b.nonce)));
        Ok(first.is_some_and(|u| u.nonce == nonce).then_some(once.user))
    }

    async fn uses(&self, hash: &str) -> Result<Vec<OnceUseRow>, StoreError> {
        timed(
            self.client
                .query(
                    "SELECT token_hash, nonce, toUInt32(used) AS used, \
                     toUInt32(expires) AS expires FROM signin_token_uses \
                     WHERE token_hash = ? LIMIT 100",
                )
                .bind(hash)
                .fetch_all::<OnceUseRow>(),
        )
        .await
    }
}

/// Runs a ClickHouse call with [`TIMEOUT`].
async fn timed<T>(
    f: impl Future<Output = Result<T, clickhouse::error::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(StoreError::Timeout(TIMEOUT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        for ok in ["ada", "ada.lovelace@example.org", "a-b_c", &"x".repeat(64)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "with space", "ümlaut", "a/b", "a\nb", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn versions_are_milliseconds_never_behind_the_clock_given() {
        assert!(now_ms(0) > 1_600_000_000_000);
        assert_eq!(now_ms(u32::MAX), u64::from(u32::MAX) * 1000);
    }
}
