//! A collector's in-memory copy of something kept in ClickHouse, refreshed in the background:
//! the API keys ([`crate::api::keystore::KeyCache`]) and the accounts, sessions and shared
//! links ([`crate::access::Access`]) are both kept this way.
//!
//! The copy is re-read every `refresh_every` (`api.key_refresh_secs`); a failed read keeps the
//! previous copy. A caller that does not find what it looks for may ask for one read
//! ([`Mirror::refresh_for_unknown`]); such reads begin at most once a second, however many
//! callers ask, and callers that arrived while one was waiting share its result, so made-up
//! session cookies cannot turn into a flood of queries. A copy not refreshed for a minute (or
//! three intervals, if longer) is not trusted ([`Unavailable`]): a sign-out or revocation could
//! be missing from it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

/// Shortest time between two reads caused by unknown values.
pub const ON_DEMAND_GAP: Duration = Duration::from_secs(1);

/// Shortest age at which a copy that could not be refreshed is no longer trusted.
pub const MIN_STALE_AFTER: Duration = Duration::from_secs(60);

/// Where the copy comes from.
pub trait Source: Send + Sync + 'static {
    /// What is kept.
    type Copy: Send + Sync + 'static;
    /// Why a read failed.
    type Error: std::fmt::Display + Send;
    /// Reads everything once.
    fn load(&self) -> impl Future<Output = Result<Self::Copy, Self::Error>> + Send;
}

/// The copy is too old to trust, or was never read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

struct Loaded<T> {
    copy: Arc<T>,
    at: Instant,
}

/// The copy of `S`.
pub struct Mirror<S: Source> {
    source: S,
    what: &'static str,
    copy: ArcSwapOption<Loaded<S::Copy>>,
    refresh_every: Duration,
    stale_after: Duration,
    on_demand: tokio::sync::Mutex<Option<Instant>>,
    on_demand_reads: AtomicU64,
}

impl<S: Source> Mirror<S> {
    /// An empty copy of `source` (called `what` in the logs), to be filled by
    /// [`refresh`](Self::refresh).
    pub fn new(source: S, what: &'static str, refresh_every: Duration) -> Self {
        Mirror {
            source,
            what,
            copy: ArcSwapOption::empty(),
            refresh_every,
            stale_after: MIN_STALE_AFTER.max(refresh_every * 3),
            on_demand: tokio::sync::Mutex::new(None),
            on_demand_reads: AtomicU64::new(0),
        }
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Re-reads; on failure the previous copy stays.
    pub async fn refresh(&self) -> Result<(), S::Error> {
        let started = Instant::now();
        let copy = self.source.load().await?;
        self.copy.store(Some(Arc::new(Loaded {
            copy: Arc::new(copy),
            at: started,
        })));
        Ok(())
    }

    /// Refreshes every `refresh_every` until the process ends.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(self.refresh_every).await;
                if let Err(e) = self.refresh().await {
                    tracing::warn!(what = self.what, error = %e, "re-reading failed; keeping the previous copy");
                }
            }
        })
    }

    /// The copy, if it is fresh enough to trust.
    pub fn current(&self) -> Result<Arc<S::Copy>, Unavailable> {
        match &*self.copy.load() {
            Some(l) if l.at.elapsed() <= self.stale_after => Ok(l.copy.clone()),
            _ => Err(Unavailable),
        }
    }

    /// One read for a value not in the copy, unless a read began since the caller arrived.
    /// Reads of this kind begin at least [`ON_DEMAND_GAP`] apart.
    pub async fn refresh_for_unknown(&self) {
        let arrived = Instant::now();
        let mut last = self.on_demand.lock().await;
        let read_since = |at: Option<Instant>| at.is_some_and(|at| at >= arrived);
        let loaded = self.copy.load().as_ref().map(|l| l.at);
        if read_since(*last) || read_since(loaded) {
            return;
        }
        if let Some(at) = *last {
            tokio::time::sleep_until((at + ON_DEMAND_GAP).into()).await;
        }
        *last = Some(Instant::now());
        self.on_demand_reads.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.refresh().await {
            tracing::warn!(what = self.what, error = %e, "an on-demand read failed");
        }
    }

    /// How many reads unknown values caused.
    pub fn on_demand_reads(&self) -> u64 {
        self.on_demand_reads.load(Ordering::Relaxed)
    }

    /// How old a copy may be and still be trusted.
    #[cfg(test)]
    pub(crate) fn stale_after(&self) -> Duration {
        self.stale_after
    }

    /// Puts `copy` in place as if a read had begun at `at`, so that tests of the users of a
    /// mirror can set up a copy of any age without a database.
    #[cfg(test)]
    pub(crate) fn set_read_at(&self, copy: S::Copy, at: Instant) {
        self.copy.store(Some(Arc::new(Loaded {
            copy: Arc::new(copy),
            at,
        })));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// Counts its reads; fails when told to.
    struct Counter {
        reads: AtomicU32,
        fail: std::sync::atomic::AtomicBool,
    }

    impl Source for Arc<Counter> {
        type Copy = u32;
        type Error = String;
        async fn load(&self) -> Result<u32, String> {
            let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
            if self.fail.load(Ordering::SeqCst) {
                Err("down".into())
            } else {
                Ok(n)
            }
        }
    }

    fn counter() -> Arc<Counter> {
        Arc::new(Counter {
            reads: AtomicU32::new(0),
            fail: false.into(),
        })
    }

    #[tokio::test]
    async fn unread_is_unavailable_and_a_failed_read_keeps_the_copy() {
        let c = counter();
        let m = Mirror::new(c.clone(), "test", Duration::from_secs(5));
        assert_eq!(m.current().err(), Some(Unavailable));
        m.refresh().await.unwrap();
        assert_eq!(*m.current().unwrap(), 1);
        c.fail.store(true, Ordering::SeqCst);
        assert!(m.refresh().await.is_err());
        assert_eq!(*m.current().unwrap(), 1);
        assert_eq!(
            Mirror::new(counter(), "t", Duration::from_secs(600)).stale_after,
            Duration::from_secs(1800)
        );
    }

    #[tokio::test]
    async fn unknown_values_read_at_most_once_a_second() {
        let c = counter();
        let m = Arc::new(Mirror::new(c.clone(), "test", Duration::from_secs(5)));
        let started = Instant::now();
        m.refresh_for_unknown().await;
        m.refresh_for_unknown().await;
        assert_eq!(m.on_demand_reads(), 2);
        assert!(started.elapsed() >= ON_DEMAND_GAP);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move { m.refresh_for_unknown().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let reads = m.on_demand_reads();
        assert!((3..=4).contains(&reads), "{reads} reads");
        assert_eq!(c.reads.load(Ordering::SeqCst) as u64, reads);
    }
}
