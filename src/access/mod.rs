//! Who may read the statistics besides API keys: operators' accounts and their sessions, shared
//! links, one-time sign-in tokens, and the throttle on password guessing.
//!
//! Everything is kept in ClickHouse ([`store`], `schema/0008_accounts.sql`), shared by every
//! collector of the database, and each collector keeps a copy in memory ([`mirror`]) refreshed
//! every `api.key_refresh_secs`, as API keys are: a session opened, a password changed or a
//! link revoked on one collector reaches all within that time, and a session cookie from
//! another collector is found by one on-demand read. The secrets ([`secret`]) are stored only as
//! hashes (SHA-256 for random tokens, Argon2id for passwords), except a shared link's token,
//! which admins may copy again.
//!
//! A user sees only the sites of their account that are configured; an admin every configured
//! site. Failed password attempts are counted per account, per shared link and per client
//! ([`throttle`]), the client by a [`crate::privacy::ThrottleKey`] that never leaves memory.
//!
//! Part of the read side: this module uses `config`, `store`, `privacy` and `time`, never the
//! write path (`ingest`, `pipeline`, `sink`, `enrich`).

pub mod mirror;
pub mod secret;
pub mod store;
pub mod throttle;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::privacy::{FullIp, ThrottleKey, ThrottleKeyer};
use mirror::{Mirror, Source, Unavailable};
use store::{AccountTables, Link, Session, Snapshot, StoreError, User};
use throttle::Throttle;

/// How long the demo admin's one-time sign-in link is valid.
pub const ONCE_VALID_SECS: u32 = 24 * 3600;

/// Name of the demo admin account.
pub const DEMO_USER: &str = "demo";

/// The operators' session cookie. No visitor of a tracked site ever gets it: it is set only by
/// a sign-in to the dashboard.
pub const SESSION_COOKIE: &str = "tally_session";

/// The header the dashboard sends its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-tally-csrf";

/// The header naming a shared link (its token) on API calls of a shared dashboard.
pub const SHARE_HEADER: &str = "x-tally-share";

/// The header carrying a protected link's grant.
pub const GRANT_HEADER: &str = "x-tally-share-grant";

/// The value of the session cookie in a request's `Cookie` headers, if any.
pub fn session_cookie(headers: &hyper::HeaderMap) -> Option<String> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_string())
}

/// The value of header `name` as text, if present and visible ASCII.
pub fn header_text<'a>(headers: &'a hyper::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Password checks running at once: each takes about 19 MiB and tens of milliseconds, so a
/// burst of sign-ins queues instead of exhausting memory.
const PARALLEL_PASSWORD_CHECKS: usize = 4;

/// Most sessions remembered locally between two reads of the tables.
const MAX_LOCAL: usize = 10_000;

struct Tables(AccountTables);

impl Source for Tables {
    type Copy = Snapshot;
    type Error = StoreError;
    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.0.snapshot(crate::time::now_unix()).await
    }
}

/// Sessions opened and ended on this collector since the copy was read, so that its own
/// sign-ins and sign-outs take effect at once, without waiting for the next read.
#[derive(Default)]
struct Local {
    opened: HashMap<String, (Session, Instant)>,
    ended: HashSet<String>,
}

/// A signed-in operator, as a request sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// Account name.
    pub user: String,
    /// Admin: every site, keys and links.
    pub admin: bool,
    /// The configured sites they may see, ascending.
    pub sites: Vec<u32>,
    /// The session's stored hash (for sign-out).
    pub token_hash: String,
    /// When the session ends (Unix seconds).
    pub expires: u32,
    /// The session's CSRF token, to be sent back with every form and API call.
    pub csrf: String,
}

/// A live shared link, as a request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    /// Its public id.
    pub id: String,
    /// The one site it shows.
    pub site: u32,
    /// Whether it needs a password (and then a grant with every API call).
    pub protected: bool,
    /// What a browser that gave the right password sends back; empty for a public link.
    grant: String,
}

impl Shared {
    /// Whether the request may use the link: a public link always, a protected one only with
    /// its grant.
    pub fn admits(&self, grant: Option<&str>) -> bool {
        !self.protected || grant.is_some_and(|g| secret::same(g, &self.grant))
    }

    /// The grant, for the page of a browser that gave the right password.
    pub fn grant(&self) -> &str {
        &self.grant
    }
}

/// The grant of a protected link: a hash of its token and its stored password hash under its
/// own label. Every collector computes the same one, it changes with neither time nor
/// collector, and it cannot be made without the password hash, which only the database holds.
fn grant_of(link: &Link) -> String {
    match &link.password_hash {
        Some(h) => secret::sha256_hex(&format!("tally-share-grant\0{}\0{h}", link.token)),
        None => String::new(),
    }
}

/// What a password attempt came to.
#[derive(Debug)]
pub enum Attempt<T> {
    /// Right.
    Ok(T),
    /// Wrong name or password (not said which), or a removed account.
    Wrong,
    /// Too many failures: try again after this long.
    Throttled(Duration),
    /// The database could not be read or written.
    Failed(String),
}

/// The accounts, sessions and links of a collector.
pub struct Access {
    mirror: Mirror<Tables>,
    local: Mutex<Local>,
    accounts: Throttle<String>,
    links: Throttle<String>,
    addresses: Throttle<ThrottleKey>,
    keyer: ThrottleKeyer,
    checks: tokio::sync::Semaphore,
    configured: Vec<u32>,
    refresh_every: Duration,
}

impl Access {
    /// The copy of `tables`, refreshed every `api.key_refresh_secs`, for the sites of `config`.
    pub fn new(tables: AccountTables, config: &Config) -> Result<Self, secret::RandomError> {
        let mut configured: Vec<u32> = config.sites.iter().map(|s| s.id).collect();
        configured.sort_unstable();
        Ok(Access {
            mirror: Mirror::new(Tables(tables), "accounts", config.api.key_refresh()),
            local: Mutex::new(Local::default()),
            accounts: Throttle::default(),
            links: Throttle::default(),
            addresses: Throttle::default(),
            keyer: ThrottleKeyer::new().ok_or(secret::RandomError)?,
            checks: tokio::sync::Semaphore::new(PARALLEL_PASSWORD_CHECKS),
            configured,
            refresh_every: config.api.key_refresh(),
        })
    }

    /// The tables.
    pub fn tables(&self) -> &AccountTables {
        &self.mirror.source().0
    }

    /// Reads the tables now (at start, so a collector serves only once it can check sessions).
    pub async fn refresh(&self) -> Result<(), StoreError> {
        self.mirror.refresh().await?;
        self.lock_local()
            .opened
            .retain(|_, (_, at)| at.elapsed() < Duration::from_secs(600));
        Ok(())
    }

    /// Refreshes in the background until the process ends.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(this.refresh_every).await;
                if let Err(e) = this.refresh().await {
                    tracing::warn!(error = %e, "re-reading the accounts failed; keeping the previous copy");
                }
            }
        })
    }

    fn lock_local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sites `user` may see.
    fn sites_of(&self, user: &User) -> Vec<u32> {
        if user.admin {
            self.configured.clone()
        } else {
            self.configured
                .iter()
                .copied()
                .filter(|id| user.sites.contains(id))
                .collect()
        }
    }

    /// The viewer of session `token_hash` in `copy`, if it is live.
    fn viewer_in(&self, copy: &Snapshot, token: &str, hash: &str, now: u32) -> Option<Viewer> {
        let local = self.lock_local();
        if local.ended.contains(hash) || copy.ended.contains(hash) {
            return None;
        }
        let session = copy
            .sessions
            .get(hash)
            .or_else(|| local.opened.get(hash).map(|(s, _)| s))?;
        let user = copy.users.get(&session.user)?;
        let live = session.expires > now && !user.removed && user.version == session.user_version;
        live.then(|| Viewer {
            user: user.name.clone(),
            admin: user.admin,
            sites: self.sites_of(user),
            token_hash: hash.to_string(),
            expires: session.expires,
            csrf: secret::csrf_of(token),
        })
    }

    /// The operator whose session cookie holds `token`, if the session is live; one read of
    /// the tables for a session this copy does not know (opened on another collector).
    pub async fn session(&self, token: &str, now: u32) -> Result<Option<Viewer>, Unavailable> {
        if !secret::is_token(token) {
            return Ok(None);
        }
        let hash = secret::sha256_hex(token);
        let copy = self.mirror.current()?;
        // Known with its account: answered from the copy. A session or account this copy has
        // not seen yet (opened on another collector, or an account added since the last read)
        // costs one read.
        let user = copy
            .sessions
            .get(&hash)
            .map(|s| s.user.clone())
            .or_else(|| {
                self.lock_local()
                    .opened
                    .get(&hash)
                    .map(|(s, _)| s.user.clone())
            });
        if user.is_some_and(|u| copy.users.contains_key(&u)) {
            return Ok(self.viewer_in(&copy, token, &hash, now));
        }
        self.mirror.refresh_for_unknown().await;
        let copy = self.mirror.current()?;
        Ok(self.viewer_in(&copy, token, &hash, now))
    }

    /// The live shared link with this token; one read for a token this copy does not know.
    pub async fn share(&self, token: &str) -> Result<Option<Shared>, Unavailable> {
        if !secret::is_token(token) {
            return Ok(None);
        }
        let find = |copy: &Snapshot| {
            copy.links.get(token).map(|l| {
                (l.revoked.is_none()).then(|| Shared {
                    id: l.id.clone(),
                    site: l.site,
                    protected: l.password_hash.is_some(),
                    grant: grant_of(l),
                })
            })
        };
        let copy = self.mirror.current()?;
        if let Some(found) = find(&copy) {
            return Ok(found.filter(|s| self.configured.contains(&s.site)));
        }
        self.mirror.refresh_for_unknown().await;
        let copy = self.mirror.current()?;
        Ok(find(&copy)
            .flatten()
            .filter(|s| self.configured.contains(&s.site)))
    }

    /// The lock on `keys`, if any of them is locked now.
    fn locked(
        &self,
        account: Option<&String>,
        link: Option<&String>,
        addr: &ThrottleKey,
    ) -> Option<Duration> {
        let now = Instant::now();
        [
            account.and_then(|a| self.accounts.check(a, now).err()),
            link.and_then(|l| self.links.check(l, now).err()),
            self.addresses.check(addr, now).err(),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    /// Argon2 off the async threads, a few at a time.
    async fn check_password(&self, password: &str, hash: &str) -> bool {
        let Ok(_permit) = self.checks.acquire().await else {
            return false;
        };
        let (password, hash) = (password.to_string(), hash.to_string());
        tokio::task::spawn_blocking(move || secret::verify_password(&password, &hash))
            .await
            .unwrap_or(false)
    }

    /// Signs `name` in with `password` from `client`: a new session (its token for the cookie)
    /// or why not.
    pub async fn sign_in(
        &self,
        name: &str,
        password: &str,
        client: &FullIp,
        now: u32,
    ) -> Attempt<(String, Viewer)> {
        let addr = client.throttle_key(&self.keyer);
        let account = name.to_string();
        if let Some(wait) = self.locked(Some(&account), None, &addr) {
            return Attempt::Throttled(wait);
        }
        let user = match self.find_user(name).await {
            Ok(u) => u,
            Err(Unavailable) => return Attempt::Failed("the accounts cannot be read".into()),
        };
        // A missing account or one without a password is checked against a decoy, so that the
        // time taken does not tell which was wrong.
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.as_str())
            .filter(|h| !h.is_empty())
            .unwrap_or(secret::decoy_hash());
        let right = self.check_password(password, hash).await;
        let user = match user {
            Some(u) if right && !u.password_hash.is_empty() => u,
            _ => {
                let t = Instant::now();
                self.accounts.fail(&account, t);
                self.addresses.fail(&addr, t);
                return Attempt::Wrong;
            }
        };
        self.accounts.clear(&account);
        self.open(&user, now).await
    }

    /// Spends a one-time sign-in token and opens a session for its account.
    pub async fn sign_in_once(
        &self,
        token: &str,
        client: &FullIp,
        now: u32,
    ) -> Attempt<(String, Viewer)> {
        let addr = client.throttle_key(&self.keyer);
        if let Some(wait) = self.locked(None, None, &addr) {
            return Attempt::Throttled(wait);
        }
        let name = match self.tables().consume_once(token, now).await {
            Ok(Some(name)) => name,
            Ok(None) => {
                self.addresses.fail(&addr, Instant::now());
                return Attempt::Wrong;
            }
            Err(e) => return Attempt::Failed(e.to_string()),
        };
        match self.tables().user(&name).await {
            Ok(Some(user)) => self.open(&user, now).await,
            Ok(None) => Attempt::Wrong,
            Err(e) => Attempt::Failed(e.to_string()),
        }
    }

    async fn open(&self, user: &User, now: u32) -> Attempt<(String, Viewer)> {
        match self.tables().open_session(user, now).await {
            Ok((token, hash, session)) => {
                let mut local = self.lock_local();
                if local.opened.len() >= MAX_LOCAL {
                    local.opened.clear();
                }
                let expires = session.expires;
                local.opened.insert(hash.clone(), (session, Instant::now()));
                drop(local);
                let viewer = Viewer {
                    user: user.name.clone(),
                    admin: user.admin,
                    sites: self.sites_of(user),
                    token_hash: hash,
                    expires,
                    csrf: secret::csrf_of(&token),
                };
                Attempt::Ok((token, viewer))
            }
            Err(e) => Attempt::Failed(e.to_string()),
        }
    }

    /// The account `name` from the copy (read once more if it is not there yet), unless removed.
    async fn find_user(&self, name: &str) -> Result<Option<User>, Unavailable> {
        let copy = self.mirror.current()?;
        if let Some(u) = copy.users.get(name) {
            return Ok((!u.removed).then(|| u.clone()));
        }
        self.mirror.refresh_for_unknown().await;
        let copy = self.mirror.current()?;
        Ok(copy.users.get(name).filter(|u| !u.removed).cloned())
    }

    /// Ends `viewer`'s session on every collector.
    pub async fn sign_out(&self, viewer: &Viewer, now: u32) -> Result<(), StoreError> {
        {
            let mut local = self.lock_local();
            if local.ended.len() >= MAX_LOCAL {
                local.ended.clear();
            }
            local.ended.insert(viewer.token_hash.clone());
        }
        self.tables()
            .end_session(&viewer.token_hash, viewer.expires, now)
            .await
    }

    /// Checks the password of a protected link from `client`: its grant, or why not.
    pub async fn unlock(
        &self,
        shared: &Shared,
        password: &str,
        client: &FullIp,
    ) -> Attempt<String> {
        let addr = client.throttle_key(&self.keyer);
        if let Some(wait) = self.locked(None, Some(&shared.id), &addr) {
            return Attempt::Throttled(wait);
        }
        let Ok(copy) = self.mirror.current() else {
            return Attempt::Failed("the links cannot be read".into());
        };
        let hash = copy
            .links
            .values()
            .find(|l| l.id == shared.id)
            .and_then(|l| l.password_hash.clone());
        let Some(hash) = hash else {
            return Attempt::Wrong;
        };
        if self.check_password(password, &hash).await {
            self.links.clear(&shared.id);
            Attempt::Ok(shared.grant.clone())
        } else {
            let t = Instant::now();
            self.links.fail(&shared.id, t);
            self.addresses.fail(&addr, t);
            Attempt::Wrong
        }
    }

    /// Every link, for the admin page, with its live state from the tables (not the copy, so an
    /// admin sees their own change at once).
    pub async fn links(&self) -> Result<Vec<Link>, StoreError> {
        self.tables().links().await
    }
}

/// Makes sure the demo admin exists (admin, a random password nobody knows) and returns a new
/// one-time sign-in token for it, valid for [`ONCE_VALID_SECS`].
pub async fn demo_sign_in(tables: &AccountTables, now: u32) -> Result<String, StoreError> {
    if tables.user(DEMO_USER).await?.is_none() {
        let hash =
            secret::unusable_password_hash().map_err(|e| StoreError::Invalid(e.to_string()))?;
        tables.add_user(DEMO_USER, hash, true, &[], now).await?;
    }
    tables.create_once(DEMO_USER, now, ONCE_VALID_SECS).await
}
