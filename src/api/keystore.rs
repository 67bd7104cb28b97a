//! Where API keys live: two append-only tables in ClickHouse (`schema/0006_api_keys.sql`), shared
//! by every collector of the database, and each collector's in-memory copy of them.
//!
//! The copy is re-read in the background every `api.key_refresh_secs` (5 s by default), so a
//! key revoked with `tally key revoke` on any machine is refused by every collector within that
//! time. A well-formed key whose id is not in the copy (created since the last read) triggers
//! one read before it is refused; such reads begin at most once a second, however many unknown
//! keys arrive (they wait for the next read, at most about a second, and share it), so made-up
//! keys cannot turn into a flood of queries. Each read has a
//! timeout; a failed read keeps the previous copy. A copy that could not be refreshed for a
//! minute (or three intervals, if longer) is no longer trusted: a revocation could be missing
//! from it, so every key is refused with 503 until ClickHouse answers again. These rules are
//! [`crate::access::mirror`]'s, which keeps the accounts and sessions the same way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
#[cfg(test)]
use std::time::Instant;

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::keys;
use crate::access::mirror::{Mirror, Source, Unavailable};
use crate::store::Client;

/// Most keys read from the table; far beyond any real installation, it bounds memory if the
/// table were filled by mistake.
const MAX_KEYS: u64 = 100_000;

/// Longest a read of the tables may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest key name.
pub const MAX_NAME_CHARS: usize = 100;

/// Most sites one key may be given.
pub const MAX_SITES: usize = 1000;

/// A key as `tally key list` shows it: never the key or its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The public id.
    pub id: String,
    /// What the operator called it.
    pub name: String,
    /// The sites it may query.
    pub sites: Vec<u32>,
    /// When it was created (Unix seconds).
    pub created: u32,
    /// When it was first revoked (Unix seconds), if it was.
    pub revoked: Option<u32>,
}

/// What can go wrong managing keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// ClickHouse refused or failed.
    #[error("ClickHouse: {0}")]
    Store(#[from] clickhouse::error::Error),
    /// ClickHouse did not answer in time.
    #[error("ClickHouse did not answer within {0:?}")]
    Timeout(Duration),
    /// No random bytes.
    #[error(transparent)]
    Random(#[from] keys::RandomError),
    /// A request that makes no sense (no site, a bad name).
    #[error("{0}")]
    Invalid(String),
}

/// The outcome of `tally key revoke`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Revoked now.
    Revoked,
    /// It had been revoked already, at this time.
    Already(u32),
    /// There is no key with this id.
    Unknown,
}

#[derive(Row, Serialize, Deserialize)]
struct KeyRow {
    id: String,
    name: String,
    sites: Vec<u32>,
    key_hash: String,
    created: u32,
}

#[derive(Row, Serialize, Deserialize)]
struct RevocationRow {
    id: String,
    revoked: u32,
}

/// A key as read from the tables, with its hash.
struct Stored {
    info: KeyInfo,
    hash: Option<[u8; 32]>,
}

/// The tables of keys on one database.
#[derive(Clone)]
pub struct KeyTable {
    client: Client,
}

impl KeyTable {
    /// The tables in `client`'s database (migration 6 must have run).
    pub fn new(client: Client) -> Self {
        KeyTable { client }
    }

    /// Makes a key for `sites` and stores its hash; returns what was stored and the key, which
    /// exists nowhere else and must be handed over now.
    pub async fn create(
        &self,
        sites: &[u32],
        name: &str,
        now: u32,
    ) -> Result<(KeyInfo, String), KeyError> {
        let mut sites = sites.to_vec();
        sites.sort_unstable();
        sites.dedup();
        if sites.is_empty() {
            return Err(KeyError::Invalid("a key needs at least one site".into()));
        }
        if sites.len() > MAX_SITES {
            return Err(KeyError::Invalid(format!(
                "a key may be given at most {MAX_SITES} sites"
            )));
        }
        if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(KeyError::Invalid(format!(
                "the name must be at most {MAX_NAME_CHARS} characters, without control characters"
            )));
        }
        let new = keys::generate()?;
        let row = KeyRow {
            id: new.id.clone(),
            name: name.to_string(),
            sites: sites.clone(),
            key_hash: keys::to_hex(&new.hash),
            created: now,
        };
        timed(async {
            let mut insert = self.client.insert::<KeyRow>("api_keys").await?;
            insert.write(&row).await?;
            insert.end().await
        })
        .await?;
        let info = KeyInfo {
            id: new.id,
            name: name.to_string(),
            sites,
            created: now,
            revoked: None,
        };
        Ok((info, new.key))
    }

    /// Every key, oldest first.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, KeyError> {
        Ok(self.load().await?.into_iter().map(|s| s.info).collect())
    }

    /// Revokes key `id` (also accepts a whole key, whose id is then used).
    pub async fn revoke(&self, id: &str, now: u32) -> Result<Revocation, KeyError> {
        let id = keys::id_of(id).unwrap_or(id);
        let Some(key) = self.load().await?.into_iter().find(|s| s.info.id == id) else {
            return Ok(Revocation::Unknown);
        };
        if let Some(at) = key.info.revoked {
            return Ok(Revocation::Already(at));
        }
        let row = RevocationRow {
            id: id.to_string(),
            revoked: now,
        };
        timed(async {
            let mut insert = self
                .client
                .insert::<RevocationRow>("api_key_revocations")
                .await?;
            insert.write(&row).await?;
            insert.end().await
        })
        .await?;
        Ok(Revocation::Revoked)
    }

    /// Reads both tables. Two plain SELECTs joined here rather than a JOIN in SQL: the tables
    /// are small, and joins behave differently on 18.16 and current ClickHouse.
    async fn load(&self) -> Result<Vec<Stored>, KeyError> {
        let (rows, revocations) = timed(async {
            let rows = self
                .client
                .query(
                    "SELECT id, name, sites, key_hash, toUInt32(created) AS created \
                     FROM api_keys ORDER BY created, id LIMIT ?",
                )
                .bind(MAX_KEYS)
                .fetch_all::<KeyRow>()
                .await?;
            let revocations = self
                .client
                .query(
                    "SELECT id, toUInt32(min(revoked)) AS revoked \
                     FROM api_key_revocations GROUP BY id LIMIT ?",
                )
                .bind(MAX_KEYS)
                .fetch_all::<RevocationRow>()
                .await?;
            Ok((rows, revocations))
        })
        .await?;
        let revoked: HashMap<String, u32> =
            revocations.into_iter().map(|r| (r.id, r.revoked)).collect();
        Ok(rows
            .into_iter()
            .map(|r| Stored {
                hash: keys::from_hex(&r.key_hash),
                info: KeyInfo {
                    revoked: revoked.get(&r.id).copied(),
                    id: r.id,
                    name: r.name,
                    sites: r.sites,
                    created: r.created,
                },
            })
            .collect())
    }
}

/// Runs a ClickHouse call with [`READ_TIMEOUT`].
async fn timed<T>(
    f: impl Future<Output = Result<T, clickhouse::error::Error>>,
) -> Result<T, KeyError> {
    match tokio::time::timeout(READ_TIMEOUT, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(KeyError::Timeout(READ_TIMEOUT)),
    }
}

/// Who presented a valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's public id.
    pub id: String,
    /// The sites it may query.
    pub sites: Vec<u32>,
}

/// Why a key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// Not a key, unknown, wrong or revoked: the caller is told nothing more.
    Invalid,
    /// The copy of the keys is too old to trust (ClickHouse unreachable).
    Unavailable,
}

struct Known {
    hash: [u8; 32],
    sites: Vec<u32>,
    revoked: bool,
}

/// The keys as a [`Source`] for the [`Mirror`]: each read becomes the map the cache looks ids
/// up in.
struct Keys {
    table: KeyTable,
    /// How many keys were usable after the last read (`None` before the first), so that the
    /// log says when that changes rather than every few seconds.
    usable: std::sync::Mutex<Option<usize>>,
}

impl Source for Keys {
    type Copy = HashMap<String, Known>;
    type Error = KeyError;

    async fn load(&self) -> Result<Self::Copy, KeyError> {
        let keys: HashMap<String, Known> = self
            .table
            .load()
            .await?
            .into_iter()
            .filter_map(|s| {
                Some((
                    s.info.id,
                    Known {
                        hash: s.hash?,
                        sites: s.info.sites,
                        revoked: s.info.revoked.is_some(),
                    },
                ))
            })
            .collect();
        let usable = usable(&keys);
        let mut before = self.usable.lock().unwrap_or_else(|e| e.into_inner());
        if *before != Some(usable) {
            tracing::info!(keys = usable, "API keys loaded");
            *before = Some(usable);
        }
        Ok(keys)
    }
}

/// How many keys in `keys` are not revoked.
fn usable(keys: &HashMap<String, Known>) -> usize {
    keys.values().filter(|k| !k.revoked).count()
}

/// A collector's copy of the keys, refreshed in the background: a [`Mirror`] of the tables
/// (its refresh, staleness and on-demand rules are the ones described at the top).
pub struct KeyCache {
    mirror: Arc<Mirror<Keys>>,
}

impl KeyCache {
    /// An empty copy of `table`, to be filled by [`refresh`](Self::refresh).
    pub fn new(table: KeyTable, refresh_every: Duration) -> Self {
        let keys = Keys {
            table,
            usable: std::sync::Mutex::new(None),
        };
        KeyCache {
            mirror: Arc::new(Mirror::new(keys, "API keys", refresh_every)),
        }
    }

    /// The tables the copy is read from (the dashboard's admins manage keys through it).
    pub fn table(&self) -> &KeyTable {
        &self.mirror.source().table
    }

    /// Re-reads the keys; on failure the previous copy stays. Returns how many keys are usable.
    pub async fn refresh(&self) -> Result<usize, KeyError> {
        self.mirror.refresh().await?;
        Ok(self.mirror.current().map_or(0, |keys| usable(&keys)))
    }

    /// Refreshes every `api.key_refresh_secs` until the process ends.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        self.mirror.clone().spawn()
    }

    /// Checks a presented key: its form, then the copy (read again once if the id is new, at
    /// most one such read a second however many unknown keys arrive).
    pub async fn authenticate(&self, key: &str) -> Result<Caller, AuthError> {
        let Some(id) = keys::id_of(key) else {
            return Err(AuthError::Invalid);
        };
        match self.lookup(id, key)? {
            Some(caller) => Ok(caller),
            None => {
                self.mirror.refresh_for_unknown().await;
                self.lookup(id, key)?.ok_or(AuthError::Invalid)
            }
        }
    }

    /// `Ok(None)` when the id is not in the copy.
    fn lookup(&self, id: &str, key: &str) -> Result<Option<Caller>, AuthError> {
        let copy = self
            .mirror
            .current()
            .map_err(|Unavailable| AuthError::Unavailable)?;
        let Some(known) = copy.get(id) else {
            return Ok(None);
        };
        // The hash is checked even for a revoked key, so both refusals take the same path.
        let matches = keys::verify(key, &known.hash);
        if matches && !known.revoked {
            Ok(Some(Caller {
                id: id.to_string(),
                sites: known.sites.clone(),
            }))
        } else {
            Err(AuthError::Invalid)
        }
    }

    /// A cache holding `keys` as if read at `loaded` (`None`: never read).
    #[cfg(test)]
    fn with_keys_read_at(
        table: KeyTable,
        keys: Vec<(String, [u8; 32], Vec<u32>, bool)>,
        loaded: Option<Instant>,
    ) -> Self {
        let cache = KeyCache::new(table, Duration::from_secs(5));
        if let Some(at) = loaded {
            let keys = keys
                .into_iter()
                .map(|(id, hash, sites, revoked)| {
                    let known = Known {
                        hash,
                        sites,
                        revoked,
                    };
                    (id, known)
                })
                .collect();
            cache.mirror.set_read_at(keys, at);
        }
        cache
    }

    #[cfg(test)]
    fn with_keys(table: KeyTable, keys: Vec<(String, [u8; 32], Vec<u32>, bool)>) -> Self {
        Self::with_keys_read_at(table, keys, Some(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::mirror::{MIN_STALE_AFTER, ON_DEMAND_GAP};

    /// A table on a port nothing listens on: every read fails at once.
    fn unreachable() -> KeyTable {
        KeyTable::new(
            Client::default()
                .with_url("http://127.0.0.1:9")
                .with_validation(false),
        )
    }

    #[tokio::test]
    async fn keys_in_the_copy_are_checked_without_reading() {
        let good = keys::generate().unwrap();
        let revoked = keys::generate().unwrap();
        let cache = KeyCache::with_keys(
            unreachable(),
            vec![
                (good.id.clone(), good.hash, vec![1, 3], false),
                (revoked.id.clone(), revoked.hash, vec![1], true),
            ],
        );
        assert_eq!(
            cache.authenticate(&good.key).await,
            Ok(Caller {
                id: good.id.clone(),
                sites: vec![1, 3]
            })
        );
        assert_eq!(
            cache.authenticate(&revoked.key).await,
            Err(AuthError::Invalid)
        );
        // The right id with another secret.
        let forged = format!(
            "{}{}_{}",
            keys::PREFIX,
            good.id,
            "A".repeat(keys::SECRET_LEN)
        );
        assert_eq!(cache.authenticate(&forged).await, Err(AuthError::Invalid));
        for junk in ["", "Bearer", "tally_", &good.key[..good.key.len() - 1]] {
            assert_eq!(cache.authenticate(junk).await, Err(AuthError::Invalid));
        }
    }

    #[tokio::test]
    async fn unknown_keys_read_at_most_once_a_second_and_a_failed_read_keeps_the_copy() {
        let good = keys::generate().unwrap();
        let cache = Arc::new(KeyCache::with_keys_read_at(
            unreachable(),
            vec![(good.id.clone(), good.hash, vec![1], false)],
            // Read before these requests arrive.
            Instant::now().checked_sub(Duration::from_secs(1)),
        ));
        let started = Instant::now();
        let stranger = keys::generate().unwrap();
        assert_eq!(
            cache.authenticate(&stranger.key).await,
            Err(AuthError::Invalid)
        );
        assert_eq!(cache.mirror.on_demand_reads(), 1);
        // A second one right after waits for the gap, then reads again: a key created in
        // between would be found.
        let other = keys::generate().unwrap();
        assert_eq!(
            cache.authenticate(&other.key).await,
            Err(AuthError::Invalid)
        );
        assert_eq!(cache.mirror.on_demand_reads(), 2);
        assert!(started.elapsed() >= ON_DEMAND_GAP);
        // Fifty at once share reads: the first starts one after the gap, the others arrived
        // before it began and wait for it; none reads on its own.
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    let k = keys::generate().unwrap();
                    cache.authenticate(&k.key).await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Err(AuthError::Invalid));
        }
        let reads = cache.mirror.on_demand_reads();
        assert!((3..=4).contains(&reads), "{reads} reads");
        // The failed reads left the copy as it was.
        assert!(cache.authenticate(&good.key).await.is_ok());
    }

    #[tokio::test]
    async fn a_copy_never_read_or_too_old_refuses_every_key() {
        let good = keys::generate().unwrap();
        let cache = KeyCache::new(unreachable(), Duration::from_secs(5));
        assert_eq!(
            cache.authenticate(&good.key).await,
            Err(AuthError::Unavailable)
        );
        let key = || vec![(good.id.clone(), good.hash, vec![1], false)];
        let just_fresh = Instant::now().checked_sub(MIN_STALE_AFTER - Duration::from_secs(1));
        let too_old = Instant::now().checked_sub(MIN_STALE_AFTER + Duration::from_secs(1));
        let (Some(just_fresh), Some(too_old)) = (just_fresh, too_old) else {
            return; // a machine up for less than a minute: nothing to test
        };
        let cache = KeyCache::with_keys_read_at(unreachable(), key(), Some(just_fresh));
        assert!(cache.authenticate(&good.key).await.is_ok());
        let cache = KeyCache::with_keys_read_at(unreachable(), key(), Some(too_old));
        assert_eq!(
            cache.authenticate(&good.key).await,
            Err(AuthError::Unavailable)
        );
        // The refresh interval sets how long a copy is trusted, at least a minute.
        assert_eq!(
            KeyCache::new(unreachable(), Duration::from_secs(600))
                .mirror
                .stale_after(),
            Duration::from_secs(1800)
        );
    }

    #[tokio::test]
    async fn names_and_sites_are_checked_before_anything_is_stored() {
        let t = unreachable();
        for (sites, name) in [
            (vec![], "ok"),
            (vec![1], "line\nbreak"),
            (vec![1], &*"x".repeat(MAX_NAME_CHARS + 1)),
        ] {
            assert!(
                matches!(t.create(&sites, name, 0).await, Err(KeyError::Invalid(_))),
                "{sites:?} {name:?}"
            );
        }
        let many: Vec<u32> = (1..=(MAX_SITES as u32 + 1)).collect();
        assert!(matches!(
            t.create(&many, "", 0).await,
            Err(KeyError::Invalid(_))
        ));
        // A valid request gets as far as ClickHouse.
        assert!(matches!(
            t.create(&[2, 1, 2], "dashboard", 0).await,
            Err(KeyError::Store(_) | KeyError::Timeout(_))
        ));
    }
}
