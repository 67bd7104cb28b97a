//! tally: a self-hosted, privacy-first web analytics collector speaking the Matomo tracking
//! protocol.
//!
//! The modules follow the path of a hit: [`ingest`] reads it, [`privacy`] anonymises it on
//! arrival, [`pipeline`] runs the [`enrich`] steps over it, [`sink`] batches it and [`store`]
//! writes it to ClickHouse. [`web`] serves browsers everything else: the tracker script and
//! the opt-out page.
//! [`state`] is what every request shares; [`lifecycle`] starts and stops `tally serve`;
//! [`geo_update`] fetches the free country database it uses when none is configured.
//!
//! The read side: [`query`] answers Stats API queries, [`api`] is its HTTP door (keys, rate
//! limits, JSON and CSV), [`access`] keeps operators' accounts, sessions and shared links, and
//! [`dashboard`] serves their pages. None imports the write path.

pub mod access;
pub mod api;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod enrich;
pub mod event;
pub mod geo_update;
pub mod headers;
pub mod ingest;
pub mod lifecycle;
pub mod metrics;
pub mod pipeline;
pub mod privacy;
pub mod prune;
pub mod query;
pub mod rollup;
pub mod server;
pub mod sink;
pub mod state;
pub mod store;
pub mod time;

#[cfg(test)]
mod test_support;
pub mod web;
