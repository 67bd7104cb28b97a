//! tally: a self-hosted, privacy-first web analytics collector speaking the Matomo tracking
//! protocol.
//!
//! The modules follow the path of a hit: [`ingest`] reads it, [`privacy`] anonymises it on
//! arrival, [`pipeline`] runs the [`enrich`] steps over it, [`sink`] batches it and [`store`]
//! writes it to ClickHouse. [`web`] serves browsers everything else: the tracker script and
//! the opt-out page.
//! [`state`] is what every request shares; [`lifecycle`] starts and stops `tally serve`;
//! [`geo_update`] fetches the free country database it uses when none is configured.
//! [`http`] and [`headers`] are the small HTTP helpers both sides share.
//!
//! The read side: [`query`] answers Stats API queries, [`api`] is its HTTP door (keys, rate
//! limits, JSON and CSV), [`access`] keeps operators' accounts, sessions and shared links, and
//! [`dashboard`] serves their pages. None imports the write path. [`audit`] checks a live
//! database against the promises of the configuration (`tally audit`).

pub mod access;
pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod enrich;
pub mod event;
pub mod geo_update;
pub mod headers;
pub mod http;
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
pub mod spool;
pub mod state;
pub mod status;
pub mod store;
pub mod time;

#[cfg(test)]
mod test_support;
pub mod web;

/// The read side, `web` (which the dashboard uses) and the shared HTTP helpers never import the
/// write path: what both sides need belongs in a neutral module, as [`http`].
#[cfg(test)]
mod layering {
    use std::path::Path;

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn the_read_side_does_not_import_the_write_path() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src.join("http.rs"), src.join("headers.rs")];
        for dir in ["access", "api", "dashboard", "query", "web"] {
            rust_files(&src.join(dir), &mut files);
        }
        assert!(files.len() > 10, "{files:?}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for write in ["ingest", "pipeline", "sink", "enrich"] {
                assert!(
                    !text.contains(&format!("crate::{write}")),
                    "{} imports crate::{write}",
                    file.display()
                );
            }
        }
    }
}
