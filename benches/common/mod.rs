//! What both benches share: a throw-away ClickHouse, a collector configuration, and realistic
//! tracker hits (as `matomo.js` sends them), varied by a counter.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::sync::Arc;

use tally::config::Config;
use tally::enrich::secrets::SecretStore;
use tally::enrich::visitor::VisitorKeys;
use tally::lifecycle;
use tally::metrics::Metrics;
use tally::sink::{self, Writer};
use tally::state::App;
use tally::store::embedded::EmbeddedClickHouse;

/// Starts a ClickHouse in a temporary directory that its supervisor removes when this process
/// exits (or the value is dropped).
pub fn clickhouse() -> EmbeddedClickHouse {
    let dir = tempfile::Builder::new()
        .prefix("tally-bench-ch-")
        .tempdir()
        .expect("temp dir")
        .keep();
    EmbeddedClickHouse::start(&dir, true)
        .expect("start a ClickHouse for the bench (is clickhouse-server installed?)")
}

/// The site every hit is for.
pub const SITE: &str = r#"
[[sites]]
id = 1
name = "Example"
domains = ["example.org", "*.example.org"]
"#;

/// The configuration of a `tally serve` process a bench starts: any port on loopback, loopback
/// as the trusted proxy (the load client sends `X-Forwarded-For` to vary addresses), no
/// country database fetched, no rollup job (it would compete for the two cores with what is
/// measured), ClickHouse at `ch_url` with database `db`, site 1 on `example.org`; `top` holds
/// top-level keys, `sections` further sections.
pub fn serve_toml(ch_url: &str, db: &str, top: &str, sections: &str) -> String {
    format!(
        r#"listen = "127.0.0.1:0"
{top}
[privacy]
trusted_proxies = ["127.0.0.0/8", "::1/128"]

[geo]
auto = false

[rollup]
interval_secs = 0

[clickhouse]
url = "{ch_url}"
database = "{db}"

{SITE}
{sections}
"#
    )
}

/// A collector configuration on `url`/`db`; `extra` is TOML inserted before the sections.
pub fn config(url: &str, db: &str, extra: &str) -> Config {
    // Every run its own spool, unless the bench sets one.
    let spool = if extra.contains("[spool]") {
        String::new()
    } else {
        format!("[spool]\ndir = \"{}\"\n", spool_dir().display())
    };
    let text = format!(
        r#"listen = "127.0.0.1:0"
{extra}
{spool}

[clickhouse]
url = "{url}"
database = "{db}"

{SITE}
"#
    );
    let table: toml::Table = text.parse().expect("bench config is TOML");
    Config::from_table(table).expect("bench config is valid")
}

/// Migrates `config`'s database and builds the shared state with a running sink writer, as
/// `lifecycle::serve` does (the visitor secrets loaded once; no refresher runs).
pub async fn app(config: Config) -> (Arc<App>, Writer) {
    let url = config
        .clickhouse
        .url
        .clone()
        .expect("bench config has a url");
    lifecycle::migrate_on(&url, &config)
        .await
        .expect("migrations");
    let client = tally::store::client(&url, &config.clickhouse);
    let metrics = Arc::new(Metrics::new());
    let visitors = Arc::new(VisitorKeys::for_sites(&config.sites));
    SecretStore::new(client.clone(), visitors.clone())
        .refresh(tally::time::now_unix())
        .await
        .expect("visitor secrets");
    let status = Arc::new(tally::status::WriteStatus::default());
    let (sink, writer) =
        sink::start(client, &config, metrics.clone(), status.clone()).expect("open the spool");
    let mut app = App::new(config, metrics, sink, visitors).expect("build the app");
    app.status = status;
    (Arc::new(app), writer)
}

/// A fresh spool directory, removed when the process exits.
pub fn spool_dir() -> std::path::PathBuf {
    let dir = tempfile::Builder::new()
        .prefix("tally-bench-spool")
        .tempdir()
        .expect("temp dir");
    dir.keep()
}

/// Runs `sql` on the server at `url`.
pub async fn execute(url: &str, sql: &str) {
    clickhouse::Client::default()
        .with_url(url)
        .query(sql)
        .execute()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// `SELECT count()` of `db.events`.
pub async fn count_events(url: &str, db: &str) -> u64 {
    clickhouse::Client::default()
        .with_url(url)
        // ClickHouse 18.16 lacks the format validation needs (see `store::client`).
        .with_validation(false)
        .query(&format!("SELECT count() FROM {db}.events"))
        .fetch_one::<u64>()
        .await
        .expect("count events")
}

const SECTIONS: &[&str] = &["blog", "docs", "pricing", "about", "news", "guides", "shop"];
const TITLES: &[&str] = &[
    "Privacy-first analytics without cookies",
    "Getting started | Example Docs",
    "Pricing & plans — Example",
    "Über uns: das Team",
    "Release notes 2.4",
];
const REFERRERS: &[&str] = &[
    "",
    "https://search.example.net/search?q=privacy+analytics&ia=web",
    "https://news.example.com/item?id=41234567",
    "https://www.example.org/blog/",
    "https://social.example.social/@someone/112233445566",
];
const RESOLUTIONS: &[&str] = &["1920x1080", "1366x768", "390x844", "2560x1440", "1536x864"];

/// User agents the load harness cycles through.
pub const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
];

/// `Accept-Language` values the load harness cycles through.
pub const LANGUAGES: &[&str] = &[
    "en-US,en;q=0.9",
    "de-DE,de;q=0.9,en;q=0.8",
    "fr-FR,fr;q=0.9",
    "nl,en;q=0.7",
];

/// The query string of page view number `i`, as `matomo.js` builds it (about 450 bytes):
/// url, title, referrer, local time, visitor cookie, page view id, resolution, plugin flags
/// and timings. Everything tally reads varies with `i`.
pub fn hit_query(i: u64) -> String {
    let section = SECTIONS[(i % SECTIONS.len() as u64) as usize];
    let title = TITLES[(i % TITLES.len() as u64) as usize];
    let referrer = REFERRERS[(i / 3 % REFERRERS.len() as u64) as usize];
    let res = RESOLUTIONS[(i / 7 % RESOLUTIONS.len() as u64) as usize];
    let url = format!(
        "https://www.example.org/{section}/2024/05/page-{}?utm_source=newsletter&utm_medium=email",
        i % 997
    );
    let mut q = form_urlencoded::Serializer::new(String::with_capacity(512));
    q.append_pair("idsite", "1")
        .append_pair("rec", "1")
        .append_pair("r", &format!("{:06}", i % 1_000_000))
        .append_pair("h", &(i % 24).to_string())
        .append_pair("m", &(i % 60).to_string())
        .append_pair("s", &(i / 60 % 60).to_string())
        .append_pair("url", &url)
        .append_pair("action_name", &format!("{title} ({})", i % 97))
        .append_pair("urlref", referrer)
        .append_pair(
            "_id",
            &format!("{:016x}", (i % 5003).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        )
        .append_pair("_idvc", &(1 + i % 9).to_string())
        .append_pair("_viewts", "1714000000")
        .append_pair("send_image", "0")
        .append_pair("cookie", "1")
        .append_pair("res", res)
        .append_pair("pv_id", &pv_id(i))
        .append_pair("pf_net", "12")
        .append_pair("pf_srv", "40")
        .append_pair("pf_tfr", "3")
        .append_pair("pf_dm1", "150");
    q.finish()
}

/// Six letters and digits, like the tracker's page view id.
fn pv_id(i: u64) -> String {
    const ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut x = i.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5bd1_e995;
    let mut s = String::with_capacity(6);
    for _ in 0..6 {
        s.push(ALNUM[(x % ALNUM.len() as u64) as usize] as char);
        x /= ALNUM.len() as u64;
    }
    s
}

/// A client address behind the trusted proxy, varied by `i` (documentation ranges).
pub fn client_ip(i: u64) -> String {
    let mut s = String::with_capacity(15);
    // 81.2.69.0/24 is London in MaxMind's test city database, so geolocation benches decode a
    // real record; the last byte varies the visitors.
    let _ = write!(s, "81.2.69.{}", i % 254 + 1);
    s
}

/// Reads one response from `stream` (leftover bytes stay in `buf`); returns its status.
pub async fn read_response(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<u16> {
    use tokio::io::AsyncReadExt as _;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])
                .map_err(|_| std::io::Error::other("response head is not UTF-8"))?;
            let status: u16 = head
                .get(9..12)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| std::io::Error::other("no status line"))?;
            let length: usize = head
                .split("\r\n")
                .find_map(|line| {
                    let (k, v) = line.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let total = end + 4 + length;
            while buf.len() < total {
                buf.reserve(total - buf.len());
                if stream.read_buf(buf).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
            buf.drain(..total);
            return Ok(status);
        }
        buf.reserve(16 * 1024);
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// The trimmed standard output of `cmd args` (empty if it cannot run), for the machine's
/// description in a report.
pub fn sh(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The 1, 5 and 15 minute load averages, for a report: the machine is shared and noisy.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A server process; stopped (SIGTERM, then SIGKILL after 30 s) when dropped.
pub struct Proc {
    name: &'static str,
    child: std::process::Child,
    /// The address it announced.
    pub addr: std::net::SocketAddr,
}

impl Proc {
    /// Starts `cmd`, whose stdout announces its address in a line starting with `prefix`
    /// (`http://` optional); the rest of its stdout goes to `log`.
    pub fn start(
        name: &'static str,
        mut cmd: std::process::Command,
        prefix: &str,
        log: std::path::PathBuf,
    ) -> Proc {
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let prefix = prefix.to_string();
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut log = std::fs::File::create(log).ok();
            let mut tx = Some(tx);
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.strip_prefix(&prefix)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.trim_start_matches("http://").to_string());
                }
                if let Some(log) = log.as_mut() {
                    let _ = writeln!(log, "{line}");
                }
            }
        });
        match rx.recv_timeout(std::time::Duration::from_secs(120)) {
            Ok(addr) => Proc {
                name,
                child,
                addr: addr
                    .parse()
                    .unwrap_or_else(|_| panic!("{name} announced `{addr}`")),
            },
            Err(_) => {
                let _ = child.kill();
                panic!("{name} did not start within 120 s");
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits up to `grace`; SIGKILL after that. Returns how long the exit took and
    /// how it ended.
    pub fn stop(&mut self, grace: std::time::Duration) -> (std::time::Duration, String) {
        let begun = std::time::Instant::now();
        if let Ok(Some(status)) = self.child.try_wait() {
            return (
                std::time::Duration::ZERO,
                format!("had already exited: {status}"),
            );
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        while begun.elapsed() < grace {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (begun.elapsed(), status.to_string());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        (
            begun.elapsed(),
            format!("killed after {} s", grace.as_secs()),
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            eprintln!("stopping {}", self.name);
            self.stop(std::time::Duration::from_secs(30));
        }
    }
}

/// SplitMix64: a fixed, well-mixed hash of `i`, for the traffic generators.
pub fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A public-looking client address from the hash `h`: 10 % IPv6 in the documentation range,
/// the rest IPv4 in the /8s `first` (never .0 or .255 at the end).
pub fn public_address(h: u64, first: &[u8]) -> String {
    if h % 10 == 9 {
        format!(
            "2001:db8:{:x}:{:x}::{:x}",
            (h >> 8) & 0xffff,
            (h >> 24) & 0xffff,
            (h >> 40) & 0xffff
        )
    } else {
        format!(
            "{}.{}.{}.{}",
            first[(h >> 4) as usize % first.len()],
            (h >> 12) & 0xff,
            (h >> 20) & 0xff,
            ((h >> 28) & 0xfd) + 1
        )
    }
}
