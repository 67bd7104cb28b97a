//! The report tests' tools: hits of chosen visitors at chosen instants (`cdt` with
//! `token_auth`, the tracker's `_id` as the visitor), the real `tally rollup`, `tally key create`
//! and `tally report` commands, and `POST /api/v2/query`.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use serde_json::Value;

use super::{Collector, http, tally_bin};

/// `token_auth` of every report test's collector: it unlocks `cdt` older than a day.
pub const TOKEN: &str = "reports-token-0123456789";

/// Firefox on Linux (`common::BROWSER_UA`).
pub const FIREFOX: &str = super::BROWSER_UA;

/// Chrome on Windows.
pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// The configuration of a report test's collector, `sites` and other sections after the
/// token: the rollup inside `serve` is off (the tests run `tally rollup` when they mean to), and
/// the API's rate limit is far above what a test asks.
pub fn settings(sites: &str) -> String {
    format!(
        "token_auth = \"{TOKEN}\"\n{sites}\n\n[rollup]\ninterval_secs = 0\n\n\
         [api]\nburst = 10000\nrequests_per_hour = 1000000\n"
    )
}

/// The country database of `tests/fixtures/fetch-geo.sh`, if it has been fetched.
pub fn geo_database() -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/geo/geo-whois-asn-country.mmdb");
    path.is_file().then(|| path.display().to_string())
}

/// The Unix time of the local wall-clock time `hms` (`HH:MM:SS`) on `date` in `tz` (the
/// earlier one where the clocks go back).
pub fn local(tz: Tz, date: NaiveDate, hms: &str) -> u32 {
    let time = NaiveTime::parse_from_str(hms, "%H:%M:%S").expect("HH:MM:SS");
    let at = tz
        .from_local_datetime(&date.and_time(time))
        .earliest()
        .unwrap_or_else(|| panic!("{date} {hms} does not exist in {tz}"));
    u32::try_from(at.timestamp()).unwrap()
}

/// The local `YYYY-MM-DD HH:00:00` label of the hour of `unix` in `tz`, as `time:hour` shows it.
pub fn hour_label(tz: Tz, unix: u32) -> String {
    chrono::DateTime::from_timestamp(i64::from(unix), 0)
        .unwrap()
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:00:00")
        .to_string()
}

/// Today in `tz`.
pub fn today(tz: Tz) -> NaiveDate {
    tally::time::local_date(tz, tally::time::now_unix())
}

/// Waits until every zone of `zones` is at least `after` seconds past its local midnight and
/// more than `before` seconds before the next: hits "today" are placed in the first minutes of
/// the local day, and a test should not see its "today" become "yesterday" half-way. Returns
/// the seconds waited (at most `after + before`, in a few runs a day).
pub async fn away_from_midnight(zones: &[Tz], after: u32, before: u32) -> u32 {
    let mut waited = 0;
    loop {
        let now = tally::time::now_unix();
        let wait = zones
            .iter()
            .map(|&tz| {
                let (start, end) = tally::time::day_bounds(tz, tally::time::local_date(tz, now));
                if now < start + after {
                    start + after - now
                } else if now + before >= end {
                    end + after - now
                } else {
                    0
                }
            })
            .max()
            .unwrap_or(0);
        if wait == 0 {
            return waited;
        }
        eprintln!("waiting {wait} s to be away from a site's local midnight");
        tokio::time::sleep(Duration::from_secs(u64::from(wait))).await;
        waited += wait;
    }
}

/// A visitor: the tracker's visitor id (`_id`), its browser, and the address it comes from (the
/// collector trusts loopback proxies in these tests, so `X-Forwarded-For` is the client).
#[derive(Debug, Clone, Copy)]
pub struct Visitor {
    /// `_id`, sent as 16 hex digits.
    pub id: u64,
    /// `User-Agent`.
    pub ua: &'static str,
    /// `X-Forwarded-For`.
    pub ip: &'static str,
}

/// What a hit does.
#[derive(Debug, Clone)]
pub enum What {
    /// A page view of this path.
    Page(&'static str),
    /// A page view of this path, coming from this referrer.
    PageFrom(&'static str, &'static str),
    /// A heartbeat (`ping=1`) on this path.
    Ping(&'static str),
    /// An event: category, action, name.
    Event(&'static str, &'static str, &'static str),
    /// A click on an outbound link.
    Outlink(&'static str),
    /// A download.
    Download(&'static str),
    /// A site search: keyword, category.
    Search(&'static str, &'static str),
    /// A goal conversion (`idgoal`).
    Goal(u32),
    /// A content interaction: content name, interaction.
    Content(&'static str, &'static str),
    /// A content impression (no interaction): content name. Not an action.
    Impression(&'static str),
}

/// One tracking request.
#[derive(Debug, Clone)]
pub struct Hit {
    /// `idsite`.
    pub site: u32,
    /// The site's host, for `url`.
    pub host: &'static str,
    /// Who sends it.
    pub visitor: Visitor,
    /// When (`cdt`, Unix seconds).
    pub at: u32,
    /// What it is.
    pub what: What,
}

impl Hit {
    /// The query string of the hit.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let page = |path: &str| format!("https://{}{path}", self.host);
        let mut p = vec![
            ("idsite", self.site.to_string()),
            ("rec", "1".into()),
            ("_id", format!("{:016x}", self.visitor.id)),
            ("cdt", self.at.to_string()),
            ("token_auth", TOKEN.into()),
            ("send_image", "0".into()),
        ];
        let (path, extra): (&str, Vec<(&'static str, String)>) = match &self.what {
            What::Page(path) => (path, vec![]),
            What::PageFrom(path, referrer) => (path, vec![("urlref", referrer.to_string())]),
            What::Ping(path) => (path, vec![("ping", "1".into())]),
            What::Event(c, a, n) => (
                "/",
                vec![
                    ("e_c", c.to_string()),
                    ("e_a", a.to_string()),
                    ("e_n", n.to_string()),
                ],
            ),
            What::Outlink(target) => ("/", vec![("link", target.to_string())]),
            What::Download(target) => ("/", vec![("download", target.to_string())]),
            What::Search(keyword, category) => (
                "/",
                vec![
                    ("search", keyword.to_string()),
                    ("search_cat", category.to_string()),
                ],
            ),
            What::Goal(id) => ("/", vec![("idgoal", id.to_string())]),
            What::Content(name, interaction) => (
                "/",
                vec![("c_n", name.to_string()), ("c_i", interaction.to_string())],
            ),
            What::Impression(name) => ("/", vec![("c_n", name.to_string())]),
        };
        p.push(("url", page(path)));
        p.extend(extra);
        p
    }
}

/// Sends `hits` to `c` (sixteen at a time), each answered 204.
pub async fn send(c: &Collector, hits: &[Hit]) {
    for chunk in hits.chunks(16) {
        let mut set = tokio::task::JoinSet::new();
        for hit in chunk {
            let req = http()
                .get(c.url("/matomo.php"))
                .query(&hit.params())
                .header("user-agent", hit.visitor.ua)
                .header("x-forwarded-for", hit.visitor.ip);
            let what = format!("{hit:?}");
            set.spawn(async move {
                let r = req.send().await.unwrap();
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                assert_eq!(status, 204, "{what}: {text}");
            });
        }
        while let Some(done) = set.join_next().await {
            done.unwrap();
        }
    }
}

/// Waits until database `db` holds exactly `n` events (they are written in batches).
pub async fn wait_stored(db: &str, n: u64) {
    let start = std::time::Instant::now();
    loop {
        let stored: u64 = super::query(&format!("SELECT count() FROM {db}.events"))
            .await
            .parse()
            .unwrap();
        if stored == n {
            return;
        }
        assert!(
            stored < n && start.elapsed() < Duration::from_secs(20),
            "{db} holds {stored} events, {n} were sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The configuration file of `c`.
pub fn config_of(c: &Collector) -> PathBuf {
    c.dir.join("tally.toml")
}

/// `tally <args> --config <c's configuration>`, as a command to run.
pub fn tally_command(c: &Collector, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(tally_bin());
    cmd.args(args).arg("--config").arg(config_of(c));
    cmd.kill_on_drop(true);
    cmd
}

/// Runs `tally <args>` on `c`'s configuration (at most two minutes); stdout, or a panic with
/// stderr.
pub async fn tally(c: &Collector, args: &[&str]) -> String {
    let out = tokio::time::timeout(Duration::from_secs(120), tally_command(c, args).output())
        .await
        .unwrap_or_else(|_| panic!("tally {args:?} took over two minutes"))
        .expect("run tally");
    assert!(
        out.status.success(),
        "tally {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A key for `sites`, made with the real `tally key create`.
pub async fn create_key(c: &Collector, sites: &[u32]) -> String {
    let mut args = vec!["key", "create", "--name", "reports"];
    let ids: Vec<String> = sites.iter().map(u32::to_string).collect();
    for id in &ids {
        args.extend(["--site", id]);
    }
    let out = tally(c, &args).await;
    out.lines().last().unwrap().to_string()
}

/// An answer of `POST /api/v2/query`.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub text: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The rows, each the dimension values followed by the metric values (compact to compare
    /// with `json!([["/", 2, 3], ...])`).
    pub fn rows(&self) -> Value {
        let v = self.json();
        let Some(results) = v["results"].as_array() else {
            return Value::String(format!("{}: {}", self.status, self.text));
        };
        results
            .iter()
            .map(|r| {
                let mut row: Vec<Value> = r["dimensions"].as_array().cloned().unwrap_or_default();
                row.extend(r["metrics"].as_array().cloned().unwrap_or_default());
                Value::Array(row)
            })
            .collect()
    }
}

/// `POST /api/v2/query<suffix>` with `body`, as `key`.
pub async fn ask_with(c: &Collector, suffix: &str, key: &str, body: &Value) -> Answer {
    let r = http()
        .post(c.url(&format!("/api/v2/query{suffix}")))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    Answer {
        status: r.status().as_u16(),
        text: r.text().await.unwrap(),
    }
}

/// `POST /api/v2/query` with `body`, as `key`.
pub async fn ask(c: &Collector, key: &str, body: &Value) -> Answer {
    ask_with(c, "", key, body).await
}

/// Collects mismatches instead of stopping at the first, so one run shows everything a change
/// broke; [`Checks::finish`] fails with all of them.
#[derive(Default)]
pub struct Checks {
    failures: Vec<String>,
    passed: usize,
}

impl Checks {
    /// Records whether `got` equals `want`.
    pub fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        if got == want {
            self.passed += 1;
        } else {
            self.failures
                .push(format!("{what}:\n     got {got:?}\n    want {want:?}"));
        }
    }

    /// Records whether `cond` holds.
    pub fn holds(&mut self, what: &str, cond: bool, detail: &str) {
        if cond {
            self.passed += 1;
        } else {
            self.failures.push(format!("{what}: {detail}"));
        }
    }

    /// How many checks passed so far.
    pub fn passed(&self) -> usize {
        self.passed
    }

    /// Fails with every mismatch recorded.
    pub fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} checks failed:\n{}",
            self.failures.len(),
            self.failures.len() + self.passed,
            self.failures.join("\n")
        );
    }
}
