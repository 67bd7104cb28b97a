//! Harness of the fault tests (`tests/faults.rs`): real processes that are stopped, frozen and
//! killed on purpose.
//!
//! - [`ClickHouse`]: a ClickHouse server of the test's own (own directory, own ports) that can be
//!   stopped and started again on the same ports and data, frozen (SIGSTOP), thawed (SIGCONT)
//!   and killed (SIGKILL). Not `EmbeddedClickHouse`: that one picks new free ports at every
//!   start, and under `TALLYTEST_SQL_CAPTURE_DIR` its supervisor dumps the query log when it
//!   stops, which fails (and leaves a `.pending` marker that fails the schema check of
//!   `tests/run-all.sh`) when the test has killed the server. The directory layout and the
//!   supervisor idea (the server dies with the test process) are the same.
//! - [`Tally`]: `tally serve` on that server with its configuration and spool in a directory of
//!   its own, which can be sent SIGTERM or SIGKILL and started again on the same spool.
//! - [`Load`]: a steady stream of hits over a few keep-alive connections, each hit marked with a
//!   unique title (`action_name=h<n>`), recording which were acknowledged (2xx), refused, or
//!   got no answer. [`check_exactly_once`] then compares that with what ClickHouse holds.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ports::stable_port;
use super::{BROWSER_UA, SITE, tally_bin};

/// The database every collector of the fault tests writes to (each has its own server).
pub const DB: &str = "faults";

/// Sends `signal` (a name such as `STOP`) to process `pid`. The harness has no libc binding;
/// `kill(1)` is what an operator would use too.
pub fn signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -s {signal} {pid} failed");
}

/// Whether process `pid` exists (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Resident memory of process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn ping(port: u16) -> bool {
    tally::store::embedded::ping(port)
}

/// Supervisor: starts the server, writes its pid, waits for its stdin to close (the test
/// stopping it, or the test process dying), then stops the server. SIGCONT after SIGTERM so a
/// frozen server can act on it.
const SUPERVISOR: &str = r#"
"$1" --config-file="$2/config.xml" >>"$2/log/stdout.log" 2>&1 &
pid=$!
echo "$pid" > "$2/server.pid.tmp" && mv "$2/server.pid.tmp" "$2/server.pid"
cat >/dev/null
kill -TERM "$pid" 2>/dev/null
kill -CONT "$pid" 2>/dev/null
wait "$pid"
"#;

/// A ClickHouse server of one test: stopped, started, frozen and killed by the test. Dropping
/// it stops the server and removes its directory.
pub struct ClickHouse {
    dir: tempfile::TempDir,
    http_port: u16,
    supervisor: Option<Child>,
    pid: u32,
}

impl ClickHouse {
    /// Writes the configuration (free loopback ports, every query in `system.query_log`) and
    /// starts the server.
    pub fn start() -> ClickHouse {
        let dir = tempfile::Builder::new()
            .prefix("tally-faults-ch-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("log")).unwrap();
        let http_port = stable_port();
        let tcp_port = stable_port();
        write_server_config(dir.path(), http_port, tcp_port);
        let mut ch = ClickHouse {
            dir,
            http_port,
            supervisor: None,
            pid: 0,
        };
        ch.restart();
        ch
    }

    /// `http://127.0.0.1:PORT`, the same across restarts.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The server process (valid while it runs).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the server runs (started and neither stopped nor killed).
    pub fn running(&self) -> bool {
        self.supervisor.is_some()
    }

    /// Starts the server again on the same ports and data; returns once it answers `/ping`.
    pub fn restart(&mut self) {
        assert!(self.supervisor.is_none(), "ClickHouse is already running");
        let pid_file = self.dir.path().join("server.pid");
        let _ = std::fs::remove_file(&pid_file);
        let binary = ["/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect("clickhouse-server is installed");
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("tally-faults-clickhouse")
            .arg(binary)
            .arg(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh");
        let started = Instant::now();
        while !ping(self.http_port) {
            if started.elapsed() > Duration::from_secs(90)
                || supervisor.try_wait().unwrap().is_some()
            {
                drop(supervisor.stdin.take());
                let _ = supervisor.wait();
                panic!(
                    "ClickHouse did not start: {}",
                    std::fs::read_to_string(self.dir.path().join("log/server.err.log"))
                        .unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.pid = std::fs::read_to_string(&pid_file)
            .expect("supervisor wrote the pid")
            .trim()
            .parse()
            .unwrap();
        self.supervisor = Some(supervisor);
    }

    /// Stops the server as an operator would (SIGTERM, then waits for it to exit).
    pub fn stop(&mut self) {
        let Some(mut sup) = self.supervisor.take() else {
            return;
        };
        drop(sup.stdin.take());
        let started = Instant::now();
        while sup.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                // Never leave a server behind, even one that ignores SIGTERM.
                let _ = Command::new("kill")
                    .args(["-s", "KILL", &self.pid.to_string()])
                    .status();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server (SIGKILL): no flush, no goodbye, as in a crash.
    pub fn kill(&mut self) {
        signal(self.pid, "KILL");
        self.stop();
    }

    /// Freezes the server (SIGSTOP): its sockets still accept connections and data, but
    /// nothing answers.
    pub fn freeze(&self) {
        signal(self.pid, "STOP");
    }

    /// Thaws a frozen server (SIGCONT).
    pub fn thaw(&self) {
        signal(self.pid, "CONT");
    }

    /// Runs `sql` and returns its TSV result, trimmed; `Err` with the server's message.
    pub async fn try_query(&self, sql: &str) -> Result<String, String> {
        super::try_query_on(&self.url(), sql, Duration::from_secs(30)).await
    }

    /// Runs `sql`; panics if it fails.
    pub async fn query(&self, sql: &str) -> String {
        match self.try_query(sql).await {
            Ok(t) => t,
            Err(e) => panic!("query failed: {sql}\n{e}"),
        }
    }

    /// Stored hits of the load generator in database `db`: title -> number of rows.
    pub async fn stored(&self, db: &str) -> HashMap<String, u64> {
        let text = self
            .query(&format!(
                "SELECT title, count() FROM {db}.events WHERE title LIKE 'h%' GROUP BY title \
                 FORMAT TabSeparated"
            ))
            .await;
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (title, n) = l.split_once('\t').expect("two columns");
                (title.to_string(), n.parse().unwrap())
            })
            .collect()
    }

    /// Waits until every hit in `acked` is stored in `db` (or `timeout` passes), then
    /// `settle` longer so that a duplicate written late has its chance to show; returns what
    /// is stored.
    pub async fn wait_stored(
        &self,
        db: &str,
        acked: &[String],
        timeout: Duration,
        settle: Duration,
    ) -> HashMap<String, u64> {
        let started = Instant::now();
        loop {
            let stored = self.stored(db).await;
            let missing = acked.iter().filter(|t| !stored.contains_key(*t)).count();
            if missing == 0 || started.elapsed() > timeout {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        tokio::time::sleep(settle).await;
        self.stored(db).await
    }

    /// The server's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/server.err.log")).unwrap_or_default()
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        if self.supervisor.is_some() {
            let _ = Command::new("kill")
                .args(["-s", "CONT", &self.pid.to_string()])
                .status();
        }
        self.stop();
    }
}

/// As `src/store/embedded.rs` sets up tally's own server, plus every query logged: the
/// exactly-once test looks for inserts the server finished after tally gave up on them.
fn write_server_config(dir: &Path, http_port: u16, tcp_port: u16) {
    let options = tally::store::embedded::ServerOptions {
        log_queries: true,
        ..Default::default()
    };
    tally::store::embedded::write_server_config(dir, http_port, tcp_port, &options)
        .expect("write the ClickHouse config");
}

/// How a `tally serve` of the fault tests ended.
#[derive(Debug)]
pub struct Exit {
    /// Its exit status.
    pub status: ExitStatus,
    /// Time from the signal to the exit.
    pub took: Duration,
}

/// A `tally serve` on a [`ClickHouse`], with its configuration, logs and spool in a directory
/// of its own; started again on the same spool with [`Tally::restart`].
pub struct Tally {
    /// The directory (configuration `tally.toml`, `run-N.log` per start, `spool/`).
    pub dir: PathBuf,
    /// `http://127.0.0.1:PORT` of the current run (a new port at every start).
    pub base: String,
    child: Option<Child>,
    runs: u32,
    _tmp: tempfile::TempDir,
}

impl Tally {
    /// The configuration of the fault tests: spool in `<dir>/spool`, writes every 100 ms,
    /// inserts that time out after 2 s, a 5 s shutdown. `spool` and `sink` are keys of those
    /// sections (TOML lines; a key given replaces the default), `extra` whole sections.
    pub fn config(dir: &Path, url: &str, db: &str, spool: &str, sink: &str, extra: &str) -> String {
        // The defaults of the fault tests, unless `sink` sets the key itself.
        let sink_defaults: String = [
            ("flush_ms", "100"),
            ("insert_timeout_secs", "2"),
            ("shutdown_timeout_secs", "5"),
        ]
        .iter()
        .filter(|(k, _)| !sink.lines().any(|l| l.trim_start().starts_with(k)))
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
        format!(
            r#"listen = "127.0.0.1:0"

[clickhouse]
url = "{url}"
database = "{db}"

[spool]
{spool_dir}{spool}

[sink]
{sink_defaults}{sink}

{extra}
{SITE}
"#,
            // `<dir>/spool` unless `spool` names its own.
            spool_dir = if spool.lines().any(|l| l.trim_start().starts_with("dir")) {
                String::new()
            } else {
                format!("dir = \"{}\"\n", dir.join("spool").display())
            },
        )
    }

    /// Starts `tally serve` with [`Tally::config`] on `ch`, database `db`.
    pub fn start(ch: &ClickHouse, db: &str, spool: &str, sink: &str, extra: &str) -> Tally {
        let tmp = tempfile::Builder::new()
            .prefix("tally-faults-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let config = Self::config(&dir, &ch.url(), db, spool, sink, extra);
        Self::start_with_config(tmp, &config)
    }

    /// Starts `tally serve` in `tmp` with exactly `config`.
    pub fn start_with_config(tmp: tempfile::TempDir, config: &str) -> Tally {
        let dir = tmp.path().to_path_buf();
        std::fs::write(dir.join("tally.toml"), config).unwrap();
        let mut t = Tally {
            dir,
            base: String::new(),
            child: None,
            runs: 0,
            _tmp: tmp,
        };
        t.restart();
        t
    }

    /// Starts the process (again), on the same configuration and spool; panics with its log if
    /// it does not listen within 60 s.
    pub fn restart(&mut self) {
        if let Err(e) = self.try_restart() {
            panic!("{e}");
        }
    }

    /// Starts the process (again); `Err` with its log if it exits or does not listen in 60 s.
    pub fn try_restart(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "tally is already running");
        self.runs += 1;
        let log_path = self.dir.join(format!("run-{}.log", self.runs));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new(tally_bin())
            .args(["serve", "--config"])
            .arg(self.dir.join("tally.toml"))
            .env("RUST_LOG", "info,tally::sink=debug")
            .env("TALLY_GEO_AUTO", "false")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn tally");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let out_path = self.dir.join(format!("run-{}.stdout", self.runs));
        std::thread::spawn(move || {
            let mut out = std::fs::File::create(out_path).unwrap();
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(out, "{line}");
                if !sent && let Some(base) = line.strip_prefix("tally listening on ") {
                    let _ = tx.send(base.to_string());
                    sent = true;
                }
            }
        });
        let started = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(base) => {
                    self.base = base;
                    self.child = Some(child);
                    return Ok(());
                }
                Err(_) => {
                    let exited = child.try_wait().unwrap();
                    if exited.is_some() || started.elapsed() > Duration::from_secs(60) {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(format!(
                            "tally did not start ({exited:?}): {}",
                            std::fs::read_to_string(&log_path).unwrap_or_default()
                        ));
                    }
                }
            }
        }
    }

    /// The process id of the current run.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("tally runs").id()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends SIGTERM and waits up to `bound` for the exit; panics (after a SIGKILL) past it.
    pub fn terminate(&mut self, bound: Duration) -> Exit {
        let mut child = self.child.take().expect("tally runs");
        signal(child.id(), "TERM");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Exit {
                    status,
                    took: started.elapsed(),
                };
            }
            if started.elapsed() > bound {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tally did not exit within {bound:?} of SIGTERM; its log:\n{}",
                    self.last_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("tally runs");
        signal(child.id(), "KILL");
        let _ = child.wait();
    }

    /// Whether the current run is still alive (it has not exited on its own).
    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// The log (stderr) of the current or last run.
    pub fn last_log(&self) -> String {
        self.log_of(self.runs)
    }

    /// The log of run `n` (1: the first), without the terminal colours tracing adds.
    fn log_of(&self, n: u32) -> String {
        strip_ansi(
            &std::fs::read_to_string(self.dir.join(format!("run-{n}.log"))).unwrap_or_default(),
        )
    }

    /// The logs of every run so far, in order.
    pub fn logs(&self) -> String {
        (1..=self.runs)
            .map(|n| self.log_of(n))
            .collect::<Vec<_>>()
            .join("")
    }

    /// The spool directory (unless the configuration names another).
    pub fn spool_dir(&self) -> PathBuf {
        self.dir.join("spool")
    }

    /// `GET /metrics` of the current run.
    pub async fn metrics(&self) -> String {
        let resp = reqwest::Client::new()
            .get(self.url("/metrics"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("/metrics answers");
        assert!(resp.status().is_success(), "/metrics: {}", resp.status());
        resp.text().await.unwrap()
    }

    /// The sum of every series of metric `name` whose labels contain `label` (e.g.
    /// `reason="spool_full"`; empty: all series), from the current run's `/metrics`.
    pub async fn metric(&self, name: &str, label: &str) -> f64 {
        metric_sum(&self.metrics().await, name, label)
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The sum of the series of `name` in a Prometheus/OpenMetrics text whose labels contain
/// `label`.
pub fn metric_sum(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((m, rest)) => (m, rest),
                None => (series, ""),
            };
            (metric == name && labels.contains(label)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// The unique marker of hit `n`: its title.
pub fn marker(n: u64) -> String {
    format!("h{n}")
}

/// Hit numbers, unique in the test binary so that markers never collide.
static NEXT_HIT: AtomicU64 = AtomicU64::new(0);

/// What became of one hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered 2xx.
    Acked,
    /// Answered with this status and body.
    Refused(u16, String),
    /// No answer (connection refused or lost, timeout).
    NoAnswer(String),
}

/// Every hit a [`Load`] sent, by marker.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Marker -> what became of it.
    pub hits: Vec<(String, Outcome)>,
}

impl Outcomes {
    /// Markers of the acknowledged hits.
    pub fn acked(&self) -> Vec<String> {
        self.hits
            .iter()
            .filter(|(_, o)| *o == Outcome::Acked)
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// The refused hits: marker, status, body.
    pub fn refused(&self) -> Vec<(String, u16, String)> {
        self.hits
            .iter()
            .filter_map(|(m, o)| match o {
                Outcome::Refused(s, b) => Some((m.clone(), *s, b.clone())),
                _ => None,
            })
            .collect()
    }

    /// The hits that got no answer: marker, error.
    pub fn unanswered(&self) -> Vec<(String, String)> {
        self.hits
            .iter()
            .filter_map(|(m, o)| match o {
                Outcome::NoAnswer(e) => Some((m.clone(), e.clone())),
                _ => None,
            })
            .collect()
    }

    /// Adds the hits of another load.
    pub fn extend(&mut self, other: Outcomes) {
        self.hits.extend(other.hits);
    }

    /// Panics unless every hit was acknowledged, naming the first refused and unanswered
    /// ones; `what` says when.
    pub fn assert_all_acknowledged(&self, what: &str) {
        assert!(
            self.refused().is_empty() && self.unanswered().is_empty(),
            "every hit must be acknowledged {what}: {}; first refusals {:?}; first \
             unanswered {:?}",
            self.summary(),
            self.refused().into_iter().take(3).collect::<Vec<_>>(),
            self.unanswered().into_iter().take(3).collect::<Vec<_>>()
        );
    }

    /// `acked/refused/unanswered` counts, for messages.
    pub fn summary(&self) -> String {
        format!(
            "{} sent: {} acknowledged, {} refused, {} unanswered",
            self.hits.len(),
            self.acked().len(),
            self.refused().len(),
            self.unanswered().len()
        )
    }
}

/// The next unique marker.
pub fn next_marker() -> String {
    marker(NEXT_HIT.fetch_add(1, Ordering::Relaxed))
}

/// How many markers were handed out so far in this test binary: a hit whose number is at least
/// this was sent after this call.
pub fn markers_so_far() -> u64 {
    NEXT_HIT.load(Ordering::Relaxed)
}

/// The query string of a page view marked `marker`, its URL padded with `pad` bytes (`a`s).
pub fn hit_query(marker: &str, pad: usize) -> String {
    format!(
        "idsite=1&rec=1&send_image=0&url=https%3A%2F%2Fexample.org%2Fp%2F{marker}%2F{}&action_name={marker}",
        "a".repeat(pad)
    )
}

/// A steady load: `per_second` hits a second in all over `connections` keep-alive
/// connections, until [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<(String, Outcome)>>>,
}

impl Load {
    /// Starts sending page views to `base`'s `/matomo.php`.
    pub fn start(base: &str, per_second: u32, connections: u32) -> Load {
        Self::start_padded(base, per_second, connections, 0)
    }

    /// Like [`Load::start`], each hit's URL `pad` bytes longer (to fill a spool fast).
    pub fn start_padded(base: &str, per_second: u32, connections: u32, pad: usize) -> Load {
        Self::start_with(base, per_second, connections, move |m| hit_query(m, pad))
    }

    /// Like [`Load::start`], with the query string of each hit made by `query` from its marker.
    pub fn start_with(
        base: &str,
        per_second: u32,
        connections: u32,
        query: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Load {
        let query = Arc::new(query);
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let period = Duration::from_secs_f64(connections as f64 / per_second as f64);
        let tasks = (0..connections)
            .map(|i| {
                let stop = stop.clone();
                let acked = acked.clone();
                let url = format!("{base}/matomo.php");
                let query = query.clone();
                tokio::spawn(async move {
                    // One client each: its pool holds the one keep-alive connection.
                    let client = reqwest::Client::builder()
                        .user_agent(BROWSER_UA)
                        .pool_max_idle_per_host(1)
                        .timeout(Duration::from_secs(10))
                        .build()
                        .unwrap();
                    let mut tick = tokio::time::interval_at(
                        tokio::time::Instant::now() + period.mul_f64(i as f64 / connections as f64),
                        period,
                    );
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut out = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        tick.tick().await;
                        let m = next_marker();
                        let outcome = send(&client, &format!("{url}?{}", query(&m))).await;
                        if outcome == Outcome::Acked {
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        out.push((m, outcome));
                    }
                    out
                })
            })
            .collect();
        Load { stop, acked, tasks }
    }

    /// Hits acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Stops sending, waits for the answers of the hits in flight, and returns every outcome.
    pub async fn stop(self) -> Outcomes {
        self.stop.store(true, Ordering::Relaxed);
        let mut hits = Vec::new();
        for t in self.tasks {
            hits.extend(t.await.unwrap());
        }
        Outcomes { hits }
    }
}

/// Sends one GET and classifies the answer.
pub async fn send(client: &reqwest::Client, url: &str) -> Outcome {
    match client.get(url).send().await {
        Ok(r) if r.status().is_success() => {
            // Read the (empty) body so the connection goes back to the pool.
            let _ = r.bytes().await;
            Outcome::Acked
        }
        Ok(r) => {
            let status = r.status().as_u16();
            Outcome::Refused(status, r.text().await.unwrap_or_default())
        }
        Err(e) => Outcome::NoAnswer(e.to_string()),
    }
}

/// Every acknowledged hit is stored exactly once, nothing is stored twice, nothing refused is
/// stored, and nothing is stored that was not sent. `Err` lists what broke the promise.
pub fn check_exactly_once(
    outcomes: &Outcomes,
    stored: &HashMap<String, u64>,
) -> Result<(), String> {
    let sent: HashMap<&str, &Outcome> =
        outcomes.hits.iter().map(|(m, o)| (m.as_str(), o)).collect();
    let mut lost = Vec::new();
    let mut twice = Vec::new();
    let mut refused_but_stored = Vec::new();
    let mut unknown = Vec::new();
    for (m, o) in &outcomes.hits {
        match (o, stored.get(m)) {
            (Outcome::Acked, None) => lost.push(m.clone()),
            (Outcome::Refused(..), Some(_)) => refused_but_stored.push(m.clone()),
            _ => {}
        }
    }
    for (m, n) in stored {
        if *n > 1 {
            twice.push(format!("{m} x{n}"));
        }
        if !sent.contains_key(m.as_str()) {
            unknown.push(m.clone());
        }
    }
    if lost.is_empty() && twice.is_empty() && refused_but_stored.is_empty() && unknown.is_empty() {
        return Ok(());
    }
    let few = |v: &mut Vec<String>| {
        v.sort();
        let n = v.len();
        v.truncate(10);
        format!("{n} {v:?}")
    };
    Err(format!(
        "{}; {} distinct stored: acknowledged but not stored: {}; stored more than once: {}; \
         refused but stored: {}; stored but never sent: {}",
        outcomes.summary(),
        stored.len(),
        few(&mut lost),
        few(&mut twice),
        few(&mut refused_but_stored),
        few(&mut unknown),
    ))
}

/// Collects a value over time (e.g. RSS samples) from a blocking sampler thread.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<u64>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// Samples the RSS of `pid` every `every`.
    pub fn rss(pid: u32, every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, v) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(rss) = rss_bytes(pid) {
                    v.lock().unwrap().push(rss);
                }
                std::thread::sleep(every);
            }
        });
        Sampler {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// Stops sampling and returns the samples.
    pub fn finish(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}
