//! State shared by every request of a running collector: configuration, counters, the queue,
//! the enrichers and the visitor keys. It lives apart from the `serve` lifecycle
//! ([`crate::lifecycle`]) so that the request path (`server`, `ingest`, `pipeline`, `web`)
//! depends only on this small module and never on the code that starts and stops it. The read
//! side's [`crate::api`] hangs off it too.

use std::sync::Arc;

use ring::digest;

use crate::config::Config;
use crate::enrich::visitor::VisitorKeys;
use crate::enrich::{Enrichers, GeoError};
use crate::metrics::Metrics;
use crate::sink::Sink;
use crate::status::WriteStatus;

/// State shared by every request.
pub struct App {
    /// The validated configuration.
    pub config: Config,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The queue to ClickHouse.
    pub sink: Sink,
    /// Visitor key hashing.
    pub visitors: Arc<VisitorKeys>,
    /// Geolocation, device detection, referrer lists.
    pub enrich: Enrichers,
    /// The Stats API (keys, limits, engine); set by `serve` once its keys are loaded, `None`
    /// where nothing reads (benchmarks), which the API answers with 503.
    pub api: Option<crate::api::Api>,
    /// Health of the write path, set by the writer and the spool, read by `/ready`.
    pub status: Arc<WriteStatus>,
    token_digest: Option<digest::Digest>,
}

impl App {
    /// Assembles the shared state; fails if the configured geo database cannot be opened.
    pub fn new(
        config: Config,
        metrics: Arc<Metrics>,
        sink: Sink,
        visitors: Arc<VisitorKeys>,
    ) -> Result<Self, GeoError> {
        let token_digest = config
            .token_auth
            .as_deref()
            .map(|t| digest::digest(&digest::SHA256, t.as_bytes()));
        let enrich = Enrichers::from_config(&config)?;
        Ok(App {
            config,
            metrics,
            sink,
            visitors,
            enrich,
            api: None,
            status: Arc::new(WriteStatus::default()),
            token_digest,
        })
    }

    /// Whether `token` is the configured `token_auth`. Digests are compared, so the time taken
    /// says nothing about how much of the token was right.
    pub fn token_matches(&self, token: Option<&str>) -> bool {
        match (&self.token_digest, token) {
            (Some(expected), Some(given)) => {
                digest::digest(&digest::SHA256, given.as_bytes()).as_ref() == expected.as_ref()
            }
            _ => false,
        }
    }
}
