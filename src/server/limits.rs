//! How many connections the collector takes: within the file descriptor limit, which it raises
//! to the hard limit at start, and never more than `[server] max_connections` at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::metrics::Metrics;

/// File descriptors kept for everything but client connections: ClickHouse connections, the
/// spool's segments, the geo database, logs, the admin listener's connections.
pub const FD_RESERVE: u64 = 256;

/// Connections the admin listener takes at once: a few scrapers and probes.
pub const ADMIN_CONNECTIONS: usize = 32;

/// How often the limit or accept errors are logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Raises the soft file descriptor limit to the hard one and returns how many connections fit
/// (`wanted` at most), logging what was chosen.
pub fn fit_connections(wanted: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the file descriptor limit");
            match rlimit::getrlimit(rlimit::Resource::NOFILE) {
                Ok((soft, _)) => soft,
                Err(_) => return wanted,
            }
        }
    };
    let fits = connections_within(limit);
    if fits < wanted {
        tracing::warn!(
            fd_limit = limit,
            max_connections = fits,
            configured = wanted,
            reserve = FD_RESERVE + ADMIN_CONNECTIONS as u64,
            "server.max_connections lowered to fit the file descriptor limit (raise it with \
             `ulimit -n` or LimitNOFILE= to allow more)"
        );
        fits
    } else {
        tracing::info!(
            fd_limit = limit,
            max_connections = wanted,
            "connection limit"
        );
        wanted
    }
}

/// Connections that fit in `fd_limit` descriptors besides the reserve (at least 1).
fn connections_within(fd_limit: u64) -> usize {
    let spare = fd_limit.saturating_sub(FD_RESERVE + ADMIN_CONNECTIONS as u64);
    usize::try_from(spare).unwrap_or(usize::MAX).max(1)
}

/// The open connections of a listener: a permit each; at the limit the listener stops
/// accepting until one closes.
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
    max: usize,
    metrics: Arc<Metrics>,
    /// Whether the limit is logged (the tracking listener's; the admin one's is not worth a line).
    log: bool,
    last_log: Option<Instant>,
}

impl ConnectionLimit {
    /// `max` connections at once.
    pub fn new(max: usize, metrics: Arc<Metrics>, log: bool) -> ConnectionLimit {
        ConnectionLimit {
            permits: Arc::new(Semaphore::new(max.max(1))),
            max: max.max(1),
            metrics,
            log,
            last_log: None,
        }
    }

    /// A permit for one more connection; waits while `max` are open, logging that (at most
    /// once per 10 s) and counting it.
    pub async fn acquire(&mut self) -> OwnedSemaphorePermit {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return p;
        }
        self.metrics.connections_refused.inc();
        if self.log && self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            self.last_log = Some(Instant::now());
            tracing::warn!(
                max_connections = self.max,
                "connection limit reached: new connections wait until one closes"
            );
        }
        // The semaphore is never closed.
        match self.permits.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => std::future::pending().await,
        }
    }
}

/// Accept errors (out of file descriptors, mostly), logged once per interval with how many
/// there were, instead of once each.
#[derive(Default)]
pub struct AcceptErrors {
    since_log: u64,
    last_log: Option<Instant>,
}

impl AcceptErrors {
    /// Counts `error` and logs it if the interval has passed.
    pub fn record(&mut self, error: &std::io::Error, metrics: &Metrics) {
        metrics.connections_refused.inc();
        self.since_log += 1;
        if self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            tracing::warn!(
                error = %error,
                errors = self.since_log,
                "accept failed; backing off (logged once per 10 s)"
            );
            self.since_log = 0;
            self.last_log = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_room_for_the_rest() {
        assert_eq!(connections_within(1024), 1024 - 256 - 32);
        assert_eq!(connections_within(100), 1);
        assert_eq!(connections_within(1 << 20), (1 << 20) - 288);
    }

    #[tokio::test]
    async fn the_limit_waits_and_counts() {
        let metrics = Arc::new(Metrics::new());
        let mut limit = ConnectionLimit::new(2, metrics.clone(), true);
        let a = limit.acquire().await;
        let _b = limit.acquire().await;
        assert_eq!(metrics.connections_refused.get(), 0);
        let third = tokio::time::timeout(Duration::from_millis(50), limit.acquire()).await;
        assert!(third.is_err(), "a third connection waits");
        assert_eq!(metrics.connections_refused.get(), 1);
        drop(a);
        let _fourth = tokio::time::timeout(Duration::from_secs(1), limit.acquire())
            .await
            .expect("taken once one closes");
    }
}
