//! Test harness: a throw-away ClickHouse per test binary (free ports, temporary directory,
//! removed when the binary exits) and real `tally serve` processes over HTTP, each writing to a
//! database of its own so tests run in parallel without seeing each other.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tally::store::embedded::EmbeddedClickHouse;

pub mod demo;
pub mod faults;
pub mod ports;
pub mod reports;

/// The ClickHouse server of this test binary.
pub fn clickhouse() -> &'static EmbeddedClickHouse {
    static CH: OnceLock<EmbeddedClickHouse> = OnceLock::new();
    CH.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("tally-test-ch-")
            .tempdir()
            .expect("temp dir")
            .keep();
        // The supervisor removes the directory when this process exits.
        EmbeddedClickHouse::start(&dir, true)
            .expect("start a test ClickHouse (is clickhouse-server installed?)")
    })
}

/// Runs `sql` on the test server and returns the TSV result, trimmed.
pub async fn query(sql: &str) -> String {
    query_on(clickhouse().url(), sql).await
}

/// Runs `sql` on the server at `url` within `timeout` and returns the TSV result without its
/// last newline; `Err` with the server's message (or the transport error).
#[allow(dead_code)]
pub async fn try_query_on(url: &str, sql: &str, timeout: Duration) -> Result<String, String> {
    let resp = reqwest::Client::new()
        .post(url)
        .timeout(timeout)
        .body(sql.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let ok = resp.status().is_success();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    if ok {
        Ok(text.trim_end_matches('\n').to_string())
    } else {
        Err(text.trim().to_string())
    }
}

/// Runs `sql` on the server at `url` and returns the TSV result, trimmed.
pub async fn query_on(url: &str, sql: &str) -> String {
    let resp = reqwest::Client::new()
        .post(url)
        .body(sql.to_string())
        .send()
        .await
        .expect("ClickHouse reachable");
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "query failed: {sql}\n{text}");
    text.trim_end_matches('\n').to_string()
}

pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A running `tally serve`.
pub struct Collector {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Its database.
    pub db: String,
    /// Its directory (config file, logs).
    pub dir: PathBuf,
    child: Option<Child>,
}

/// The binary under test.
pub fn tally_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tally")
}

/// Writes a config for `db` on the test server with `extra` appended (TOML: sections, sites).
pub fn write_config(dir: &Path, db: &str, extra: &str) -> PathBuf {
    write_config_on(dir, clickhouse().url(), db, extra)
}

/// Writes a config for `db` on the server at `url` with `extra` appended.
pub fn write_config_on(dir: &Path, url: &str, db: &str, extra: &str) -> PathBuf {
    let path = dir.join("tally.toml");
    // Quick flushes so tests see their events soon, unless the test sets its own.
    let sink = if extra.contains("[sink]") {
        ""
    } else {
        "[sink]\nflush_ms = 50\nbatch_size = 1000\n"
    };
    // Each collector its own spool (one process per spool directory).
    let spool = if extra.contains("[spool]") {
        String::new()
    } else {
        format!("[spool]\ndir = \"{}\"\n", dir.join("spool").display())
    };
    let text = format!(
        r#"listen = "127.0.0.1:0"
{extra}

[clickhouse]
url = "{url}"
database = "{db}"

{sink}
{spool}
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The usual test site: id 1 on `example.org` and its subdomains.
pub const SITE: &str = r#"
[[sites]]
id = 1
name = "Example"
domains = ["example.org", "*.example.org"]
"#;

/// A second site besides [`SITE`], for tests of who may see which site.
pub const OTHER_SITE: &str = r#"
[[sites]]
id = 2
name = "Other"
domains = ["other.net"]
"#;

/// `out`'s stdout if the command succeeded; else a panic showing both of its outputs.
pub fn succeeded(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}: {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

impl Collector {
    /// Starts a collector with `SITE` and `extra` configuration.
    pub fn start(extra: &str) -> Collector {
        Self::start_raw(&format!("{extra}\n{SITE}"))
    }

    /// Starts a collector with exactly `extra` after the connection settings.
    pub fn start_raw(extra: &str) -> Collector {
        Self::start_on(&unique_name("t"), extra)
    }

    /// Starts a collector with `SITE` and `extra` on database `db` (several collectors may
    /// share one).
    pub fn start_shared(db: &str, extra: &str) -> Collector {
        Self::start_on(db, &format!("{extra}\n{SITE}"))
    }

    /// Starts a collector with exactly `extra` after the connection settings, on database `db`
    /// (several collectors may share one).
    pub fn start_raw_shared(db: &str, extra: &str) -> Collector {
        Self::start_on(db, extra)
    }

    fn start_on(db: &str, extra: &str) -> Collector {
        Self::start_raw_on_server(clickhouse().url(), db, extra)
    }

    /// Starts a collector with exactly `extra` after the connection settings, on database `db`
    /// of the server at `url` (not this binary's test server).
    pub fn start_raw_on_server(url: &str, db: &str, extra: &str) -> Collector {
        let dir = tempfile::tempdir().unwrap().keep();
        let db = db.to_string();
        let config = write_config_on(&dir, url, &db, extra);
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let mut child = Command::new(tally_bin())
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "debug")
            // No country database fetched from the npm registry at start: tests that want
            // countries configure a fixture (`tests/geo_update.rs` tests the fetch itself).
            .env("TALLY_GEO_AUTO", "false")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn tally");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let out_path = dir.join("stdout.log");
        std::thread::spawn(move || {
            let mut log = std::fs::File::create(out_path).unwrap();
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                use std::io::Write;
                let _ = writeln!(log, "{line}");
                if !sent && let Some(base) = line.strip_prefix("tally listening on ") {
                    let _ = tx.send(base.to_string());
                    sent = true;
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "tally did not start: {}",
                    std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
                );
            }
        };
        Collector {
            base,
            db,
            dir,
            child: Some(child),
        }
    }

    /// `tally <args> --config <this collector's configuration>` with `stdin` as its input:
    /// its stdout, or its stderr when it fails.
    pub fn run_tally(&self, args: &[&str], stdin: &str) -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new(tally_bin())
            .args(args)
            .arg("--config")
            .arg(self.dir.join("tally.toml"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tally runs");
        // A command that does not read its input may have exited already: that is its answer.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(String::from_utf8(out.stdout).unwrap())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Rows of `events` matching `filter` (SQL condition).
    pub async fn count(&self, filter: &str) -> u64 {
        query(&format!(
            "SELECT count() FROM {}.events WHERE {filter}",
            self.db
        ))
        .await
        .parse()
        .unwrap()
    }

    /// Waits until `count(filter) >= n` (events are written in batches), returning the count.
    pub async fn wait_for(&self, filter: &str, n: u64) -> u64 {
        let start = Instant::now();
        loop {
            let c = self.count(filter).await;
            if c >= n || start.elapsed() > Duration::from_secs(15) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a valid page view marked with `tag` in its title and waits until it is stored.
    /// The queue is first-in first-out, so everything sent before it has been decided by then.
    pub async fn barrier(&self, tag: &str) {
        let resp = http()
            .get(self.url("/matomo.php"))
            .query(&[
                ("idsite", "1"),
                ("rec", "1"),
                ("url", "https://example.org/barrier"),
                ("action_name", tag),
                ("send_image", "0"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        let n = self.wait_for(&format!("title = '{tag}'"), 1).await;
        assert_eq!(n, 1, "barrier hit {tag} not stored");
    }

    /// GETs `path` from the collector as a browser would and returns the body.
    pub async fn text(&self, path: &str) -> String {
        self.text_with(path, &[]).await
    }

    /// GETs `path` with extra request headers and returns the body.
    pub async fn text_with(&self, path: &str, headers: &[(&str, &str)]) -> String {
        let mut req = http().get(self.url(path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.unwrap().text().await.unwrap()
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the collector logged so far.
    pub fn logs(&self) -> String {
        let mut s = std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default());
        s
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A desktop browser's user agent: hits without one are dropped as bots.
pub const BROWSER_UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";

/// An HTTP client that keeps no cookies of its own and presents itself as a browser.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(BROWSER_UA)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A client that follows no redirects and asks for no compression: for checking a response
/// as it is (opt-out form answers, encodings).
pub fn raw() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(BROWSER_UA)
        .no_gzip()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The `Set-Cookie` lines of a response, in order.
pub fn set_cookies(r: &reqwest::Response) -> Vec<&str> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}
