//! `[sink]` and `[spool]`: how accepted events reach ClickHouse, and where they wait.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Config, ConfigError};

/// Batching of events into ClickHouse.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// No longer used: events wait in the disk spool (`[spool] max_bytes`), not in memory.
    /// Accepted so that old configuration files still load; a warning says it is ignored.
    #[serde(default)]
    pub queue_capacity: Option<usize>,
    /// Flush when this many events are waiting.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Flush at least this often (milliseconds) while events are waiting.
    #[serde(default = "default_flush_ms")]
    pub flush_ms: u64,
    /// Longest an insert into ClickHouse may take, sending and answer together (seconds);
    /// beyond it the insert counts as failed (and is checked before it is retried).
    #[serde(default = "default_insert_timeout_secs")]
    pub insert_timeout_secs: u64,
    /// At SIGTERM, how long the writer may go on writing what the spool holds (seconds); what
    /// is left stays in the spool for the next start. Well below systemd's 90 s stop timeout.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
}

impl SinkConfig {
    /// The flush interval.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_ms)
    }
    /// The insert timeout.
    pub fn insert_timeout(&self) -> Duration {
        Duration::from_secs(self.insert_timeout_secs)
    }
    /// The time the writer has at shutdown.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.batch_size == 0 || self.batch_size > 100_000 {
            return Err(ConfigError::key(
                "sink.batch_size",
                "must be between 1 and 100000 (one insert must stay one ClickHouse block)",
            ));
        }
        if self.flush_ms == 0 {
            return Err(ConfigError::key("sink.flush_ms", "must be at least 1"));
        }
        if !(1..=600).contains(&self.insert_timeout_secs) {
            return Err(ConfigError::key(
                "sink.insert_timeout_secs",
                "must be between 1 and 600",
            ));
        }
        if !(1..=600).contains(&self.shutdown_timeout_secs) {
            return Err(ConfigError::key(
                "sink.shutdown_timeout_secs",
                "must be between 1 and 600",
            ));
        }
        Ok(())
    }
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            queue_capacity: None,
            batch_size: default_batch_size(),
            flush_ms: default_flush_ms(),
            insert_timeout_secs: default_insert_timeout_secs(),
            shutdown_timeout_secs: default_shutdown_timeout_secs(),
        }
    }
}

fn default_batch_size() -> usize {
    10_000
}
fn default_flush_ms() -> u64 {
    1_000
}
fn default_insert_timeout_secs() -> u64 {
    10
}
fn default_shutdown_timeout_secs() -> u64 {
    20
}

/// When the spool's writes are forced to the disk (`fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// A hit is answered only once its record is on the disk (group commit: the hits that
    /// arrive during one `fdatasync` share the next). Survives power loss; costs an fsync's
    /// latency on every answer.
    Always,
    /// Records are written before the answer and forced to the disk every
    /// `fsync_interval_ms`: a crash of tally loses nothing, a power loss at most the last interval.
    #[default]
    Interval,
    /// Records are written before the answer and left to the kernel: a crash of tally loses
    /// nothing, a power loss what the kernel had not yet written (up to ~30 s on Linux).
    Never,
}

/// The disk spool: every accepted event waits here until ClickHouse has it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// Directory of the segment files. Unset: `spool` in the data directory (beside the
    /// embedded ClickHouse, see [`Config::data_dir`]).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// When writes are forced to the disk.
    #[serde(default)]
    pub fsync: FsyncMode,
    /// `interval`: how often (milliseconds).
    #[serde(default = "default_fsync_interval_ms")]
    pub fsync_interval_ms: u64,
    /// Most bytes the spool holds on disk; beyond it hits are refused with 503.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// A segment file is sealed, and a new one begun, at this size.
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: u64,
}

impl SpoolConfig {
    /// The fsync interval.
    pub fn fsync_interval(&self) -> Duration {
        Duration::from_millis(self.fsync_interval_ms)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=60_000).contains(&self.fsync_interval_ms) {
            return Err(ConfigError::key(
                "spool.fsync_interval_ms",
                "must be between 1 and 60000",
            ));
        }
        if !(65_536..=1 << 30).contains(&self.segment_bytes) {
            return Err(ConfigError::key(
                "spool.segment_bytes",
                "must be between 64 KiB and 1 GiB",
            ));
        }
        if self.max_bytes < 2 * self.segment_bytes {
            return Err(ConfigError::key(
                "spool.max_bytes",
                "must be at least twice spool.segment_bytes",
            ));
        }
        Ok(())
    }
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: None,
            fsync: FsyncMode::default(),
            fsync_interval_ms: default_fsync_interval_ms(),
            max_bytes: default_max_bytes(),
            segment_bytes: default_segment_bytes(),
        }
    }
}

fn default_fsync_interval_ms() -> u64 {
    1_000
}
fn default_max_bytes() -> u64 {
    1 << 30
}
fn default_segment_bytes() -> u64 {
    16 << 20
}

impl Config {
    /// The directory of tally's own files: the parent of `[clickhouse] embedded_dir`
    /// (`var` by default), or the working directory.
    pub fn data_dir(&self) -> PathBuf {
        match self.clickhouse.embedded_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The spool's directory: `[spool] dir`, or `spool` in the data directory.
    pub fn spool_dir(&self) -> PathBuf {
        self.spool
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir().join("spool"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_table(text.parse::<toml::Table>().unwrap())
    }

    #[test]
    fn spool_defaults_beside_the_data() {
        let c = load("").unwrap();
        assert_eq!(c.spool_dir(), PathBuf::from("var/spool"));
        assert_eq!(c.spool.fsync, FsyncMode::Interval);
        let c = load("[clickhouse]\nembedded_dir = \"/srv/t/ch\"").unwrap();
        assert_eq!(c.spool_dir(), PathBuf::from("/srv/t/spool"));
        let c = load("[spool]\ndir = \"/q\"\nfsync = \"always\"").unwrap();
        assert_eq!(c.spool_dir(), PathBuf::from("/q"));
        assert_eq!(c.spool.fsync, FsyncMode::Always);
    }

    #[test]
    fn bad_spool_and_sink_settings_are_named() {
        for (text, key) in [
            ("[spool]\nfsync = \"sometimes\"", "spool"),
            ("[spool]\nmax_bytes = 1000", "spool.max_bytes"),
            ("[spool]\nsegment_bytes = 10", "spool.segment_bytes"),
            (
                "[sink]\ninsert_timeout_secs = 0",
                "sink.insert_timeout_secs",
            ),
            ("[sink]\nbatch_size = 200000", "sink.batch_size"),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        // Old files with the in-memory queue's size still load.
        assert!(load("[sink]\nqueue_capacity = 5").is_ok());
    }
}
