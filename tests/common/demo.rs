//! The zero-configuration demo: `tally serve` without a config file, in a directory of the
//! test's own, with its embedded ClickHouse under `./var`; and the lines it prints once ready.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tally_bin;

/// A running demo and what it printed.
pub struct Demo {
    child: Child,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT`, where it listens.
    pub base: String,
    /// The URL of the ClickHouse it started.
    pub clickhouse: String,
    /// The database its events go to.
    pub database: String,
    /// The tracking URL of the demo site.
    pub tracking: String,
    /// The one-time sign-in link.
    pub sign_in: String,
}

impl Demo {
    /// Starts `tally serve` in `dir` on any free port, flushing every 50 ms, with `env` on
    /// top; returns once it has printed its five lines, in order: where it listens, where it
    /// stores events, the demo site's tracking URL, the demo page and the sign-in link. Fails
    /// with its log if they do not come within 90 seconds (the first start may fetch the
    /// country database).
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Demo {
        let mut child = Command::new(tally_bin())
            .arg("serve")
            .current_dir(dir)
            .env("TALLY_LISTEN", "127.0.0.1:0")
            .env("TALLY_SINK_FLUSH_MS", "50")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        // Read on a thread so a tally that hangs fails the test instead of blocking it.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let log = || std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
        let mut lines: Vec<String> = Vec::new();
        let mut next = || match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(line) => {
                lines.push(line.clone());
                line
            }
            Err(_) => {
                let _ = child.kill();
                panic!("demo tally did not start: {lines:?} {}", log())
            }
        };
        let listening = next();
        let storage = next();
        let tracking = next();
        let demo_page = next();
        let sign_in = next();
        let base = listening
            .strip_prefix("tally listening on ")
            .unwrap_or_else(|| panic!("{listening}"))
            .to_string();
        let (clickhouse, database) = storage
            .strip_prefix("events stored in ClickHouse at ")
            .and_then(|s| s.split_once(", database "))
            .unwrap_or_else(|| panic!("{storage}"));
        assert!(clickhouse.starts_with("http://127.0.0.1:"), "{storage}");
        let tracking = tracking
            .split_once(" at ")
            .filter(|(site, _)| site.starts_with("tracking site 1 (Demo site)"))
            .map(|(_, url)| url.to_string())
            .unwrap_or_else(|| panic!("{tracking}"));
        assert!(
            tracking.starts_with(&format!("{base}/matomo.php?idsite=1&rec=1")),
            "{tracking}"
        );
        assert_eq!(
            demo_page,
            format!("demo website (tracked as site 1): {base}/demo")
        );
        let sign_in = sign_in
            .strip_prefix("sign in to the dashboard: ")
            .unwrap_or_else(|| panic!("{sign_in}"))
            .to_string();
        assert!(
            sign_in.starts_with(&format!("{base}/login/once?t=")),
            "{sign_in}"
        );
        Demo {
            child,
            dir: dir.to_path_buf(),
            base,
            clickhouse: clickhouse.to_string(),
            database: database.to_string(),
            tracking,
            sign_in,
        }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    /// `sql` (TSV) asked of the demo's own ClickHouse; `{db}` stands for its database.
    pub async fn query(&self, sql: &str) -> String {
        super::query_on(&self.clickhouse, &sql.replace("{db}", &self.database)).await
    }

    /// Rows of the demo's `events` with this title.
    pub async fn count(&self, title: &str) -> u64 {
        let sql = format!("SELECT count() FROM {{db}}.events WHERE title = '{title}'");
        self.query(&sql).await.trim().parse().unwrap()
    }

    /// Waits until a row with `title` is stored, failing after 15 seconds.
    pub async fn wait_for(&self, title: &str) {
        let start = Instant::now();
        while self.count(title).await == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "hit {title} not stored in the demo's ClickHouse: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM; asserts a clean exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "demo tally exited with {status}");
    }
}

impl Drop for Demo {
    /// A failed assertion must not leave the demo (and the ClickHouse it runs) behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}
