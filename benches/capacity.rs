//! The capacity harness: what one collector core, one ClickHouse node and one day of traffic
//! cost, measured on the real `tally serve` and a real ClickHouse (18.16 here), for
//! `docs/capacity.md`.
//!
//! ```sh
//! cargo bench --bench capacity                      # 1 M hits a phase, ~5 min after the build
//! CAPACITY_HITS=200000 cargo bench --bench capacity # smaller phases
//! CAPACITY_EXPORT=/tmp/events.native cargo bench --bench capacity   # also dump day 1's events
//! cargo test --bench capacity                       # smoke round: a few thousand hits
//! ```
//!
//! The traffic is a generated day of one site, sent as `matomo.js` sends it (one GET a hit): a
//! few hundred thousand visitors, each with its own address, user agent and language (half with
//! the tracker's visitor cookie), one to three visits a day, page views drawn from 5,000 pages
//! with a long tail, heartbeat pings, custom events, outlinks, downloads and site searches,
//! entry referrers from search engines, social sites and a long tail of sites, UTM campaigns on
//! some entries. Each hit carries its own time (`cdt`, unlocked by `token_auth`) on a daily curve
//! over a past UTC day, so visits, partitions and aggregates look like a real day's.
//!
//! Phases (each of `CAPACITY_HITS` hits, on its own UTC day: yesterday, two and three days ago):
//! 1. **collect**: hits sent while ClickHouse takes the writes; CPU seconds of tally and of
//!    ClickHouse (`/proc/PID/stat`) from the first hit until every accepted hit is stored. Then
//!    `OPTIMIZE TABLE events FINAL` and the day's `system.parts`; then `tally rollup --day`
//!    for that day alone (its wall time, ClickHouse's CPU) and the sizes of `visits` and `agg_*`.
//! 2. **drain**: ClickHouse stopped (`SIGSTOP`, a server this harness started) while the hits go
//!    to tally's spool; the ingest alone costs tally's CPU. Then `SIGCONT`: the writer drains the
//!    spool in `[sink] batch_size` (10,000) batches as fast as the node takes them: rows/s and
//!    CPU seconds of ClickHouse and of tally's writer per million rows.
//! 3. **drain + rollup**: as 2, with `tally rollup --day` of day 1 running again and again
//!    meanwhile, as `tally serve` recomputes today and yesterday every few minutes.
//!
//! The machine, the load average and `nproc` are printed with the figures: this runs on
//! whatever else the machine is doing, so repeat it and compare ranges.

mod common;
use common::{Proc, loadavg, mix, read_response, sh};

use std::collections::BTreeMap;
use std::fmt::Write as _;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tally::store::embedded::{EmbeddedClickHouse, ServerOptions};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const DB: &str = "capacity";
const TOKEN: &str = "capacity-bench-token-0123456789";

/// One hit of the generated day.
#[derive(Clone, Copy)]
struct Hit {
    ts: u32,
    visitor: u32,
    /// Number of the visit of this visitor (0..3): its referrer and campaign.
    visit: u8,
    kind: Kind,
    page: u16,
    /// The page view this hit belongs to (its `pv_id`), counted over the whole day.
    pv: u32,
    /// The page before it in the visit (`urlref` of a later page view), or `u16::MAX`.
    prev: u16,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    PageView,
    Ping,
    Event,
    Outlink,
    Download,
    Search,
}

/// A small deterministic generator (splitmix64 stream).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix(self.0)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A long-tailed index in 0..n (log-uniform: about Zipf with exponent 1).
    fn zipf(&mut self, n: u64) -> u64 {
        (((n as f64 + 1.0).powf(self.unit()) - 1.0) as u64).min(n - 1)
    }
}

const PAGES: u64 = 5_000;

/// A second of the day, drawn from a daily curve: quiet at night (UTC), busiest in the
/// afternoon; the peak hour holds about 1.9× the mean hour.
fn second_of_day(rng: &mut Rng) -> u32 {
    loop {
        let s = rng.below(86_400) as f64;
        let phase = (s / 86_400.0 - 0.6) * std::f64::consts::TAU;
        let weight = 1.0 + 0.9 * phase.cos();
        if rng.unit() * 1.9 < weight {
            return s as u32;
        }
    }
}

/// The hits of one UTC day beginning at `day_start`, at least `target` of them, for visitors
/// numbered from `first_visitor`, sorted by time (as they would arrive).
fn plan_day(day_start: u32, target: usize, first_visitor: u32, seed: u64) -> Vec<Hit> {
    let mut rng = Rng(seed);
    let mut hits = Vec::with_capacity(target + 64);
    let mut visitor = first_visitor;
    let mut pv: u32 = 0;
    while hits.len() < target {
        let visits = match rng.below(100) {
            0..=84 => 1,
            85..=96 => 2,
            _ => 3,
        };
        for visit in 0..visits {
            let mut t = second_of_day(&mut rng);
            let mut prev = u16::MAX;
            let mut page = rng.zipf(PAGES) as u16;
            // Page views: geometric, mean 2.5, at most 30.
            let views = 1 + (0..29).take_while(|_| rng.unit() < 0.6).count();
            for _ in 0..views {
                let push = |t: u32, kind: Kind, hits: &mut Vec<Hit>| {
                    hits.push(Hit {
                        ts: day_start + t.min(86_399),
                        visitor,
                        visit,
                        kind,
                        page,
                        pv,
                        prev,
                    })
                };
                push(t, Kind::PageView, &mut hits);
                let mut u = t;
                // matomo.js's heartbeat: a ping when a tab stays open.
                if rng.unit() < 0.5 {
                    u += 15 + rng.below(60) as u32;
                    push(u, Kind::Ping, &mut hits);
                }
                let r = rng.unit();
                let extra = if r < 0.15 {
                    Some(Kind::Event)
                } else if r < 0.18 {
                    Some(Kind::Outlink)
                } else if r < 0.19 {
                    Some(Kind::Download)
                } else if r < 0.21 {
                    Some(Kind::Search)
                } else {
                    None
                };
                if let Some(kind) = extra {
                    u += 2 + rng.below(30) as u32;
                    push(u, kind, &mut hits);
                }
                pv += 1;
                prev = page;
                page = rng.zipf(PAGES) as u16;
                t = u + 10 + rng.below(170) as u32;
            }
        }
        visitor += 1;
    }
    hits.sort_by_key(|h| h.ts);
    hits
}

const SECTIONS: &[&str] = &[
    "blog", "docs", "pricing", "about", "news", "guides", "shop", "help", "careers", "events",
];
const WORDS: &[&str] = &[
    "privacy",
    "analytics",
    "cookies",
    "release",
    "guide",
    "setup",
    "dashboard",
    "export",
    "retention",
    "pricing",
    "team",
    "api",
    "tracking",
    "consent",
    "report",
    "install",
];
const USER_AGENTS: &[(&str, u32)] = &[
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        24,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        18,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
        14,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        9,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
        8,
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.6312.99 Mobile Safari/537.36",
        7,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        4,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
        4,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        4,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        4,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        2,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        2,
    ),
];
const LANGUAGES: &[&str] = &[
    "en-US,en;q=0.9",
    "en-GB,en;q=0.9",
    "de-DE,de;q=0.9,en;q=0.8",
    "fr-FR,fr;q=0.9",
    "es-ES,es;q=0.9",
    "nl,en;q=0.7",
    "it-IT,it;q=0.9",
    "pt-BR,pt;q=0.9",
    "pl-PL,pl;q=0.9",
    "ja-JP,ja;q=0.9",
];
const RESOLUTIONS: &[&str] = &[
    "1920x1080",
    "390x844",
    "1366x768",
    "393x873",
    "1536x864",
    "2560x1440",
    "414x896",
    "1440x900",
    "820x1180",
];
const SEARCH: &[&str] = &[
    "https://www.google.com/",
    "https://www.google.de/",
    "https://www.bing.com/search?q=privacy+analytics",
    "https://duckduckgo.com/",
    "https://search.brave.com/search?q=web+analytics",
    "https://www.ecosia.org/search?q=cookieless+analytics",
];
const SOCIAL: &[&str] = &[
    "https://t.co/AbCdEf123",
    "https://www.reddit.com/r/selfhosted/comments/1abcd/",
    "https://news.ycombinator.com/item?id=41234567",
    "https://www.linkedin.com/feed/",
    "https://l.facebook.com/l.php?u=https%3A%2F%2Fwww.example.org%2F",
    "https://mastodon.social/@someone/112233445566",
];
const CAMPAIGNS: &[&str] = &["spring_sale", "newsletter_2024_05", "launch", "webinar"];

fn page_url(page: u16) -> String {
    let p = u64::from(page);
    let section = SECTIONS[(mix(p) % SECTIONS.len() as u64) as usize];
    let a = WORDS[(mix(p ^ 1) % WORDS.len() as u64) as usize];
    let b = WORDS[(mix(p ^ 2) % WORDS.len() as u64) as usize];
    format!("https://www.example.org/{section}/{a}-{b}-{p}")
}

fn page_title(page: u16) -> String {
    let p = u64::from(page);
    let a = WORDS[(mix(p ^ 1) % WORDS.len() as u64) as usize];
    let b = WORDS[(mix(p ^ 2) % WORDS.len() as u64) as usize];
    format!("{a} {b} #{p} | Example")
}

/// What belongs to a visitor all day: address, user agent, language, screen, cookie.
struct Visitor {
    ip: String,
    ua: &'static str,
    lang: &'static str,
    res: &'static str,
    cookie: Option<String>,
}

fn visitor(v: u32) -> Visitor {
    let h = mix(u64::from(v) ^ 0xcafe);
    const FIRST: &[u8] = &[81, 93, 145, 185, 203, 37, 62, 90, 78, 88, 109, 176];
    let ip = common::public_address(h, FIRST);
    let total: u32 = USER_AGENTS.iter().map(|(_, w)| w).sum();
    let mut pick = ((h >> 36) % u64::from(total)) as u32;
    let mut ua = USER_AGENTS[0].0;
    for (agent, w) in USER_AGENTS {
        if pick < *w {
            ua = agent;
            break;
        }
        pick -= w;
    }
    let g = mix(h);
    Visitor {
        ip,
        ua,
        lang: LANGUAGES[(g & 0xffff) as usize % LANGUAGES.len()],
        res: RESOLUTIONS[((g >> 16) % RESOLUTIONS.len() as u64) as usize],
        cookie: (g >> 40)
            .is_multiple_of(2)
            .then(|| format!("{:016x}", mix(g))),
    }
}

/// The entry referrer and campaign of a visit.
fn entry(visitor: u32, visit: u8) -> (String, Option<&'static str>) {
    let h = mix((u64::from(visitor) << 2) | u64::from(visit));
    let r = h % 100;
    let referrer = match r {
        0..=44 => String::new(),
        45..=74 => SEARCH[((h >> 8) % SEARCH.len() as u64) as usize].to_string(),
        75..=84 => SOCIAL[((h >> 8) % SOCIAL.len() as u64) as usize].to_string(),
        _ => {
            let mut rng = Rng(h);
            let site = rng.zipf(400);
            format!("https://blog{site}.example.net/posts/{}", rng.below(50))
        }
    };
    let campaign = (h >> 20)
        .is_multiple_of(10)
        .then(|| CAMPAIGNS[((h >> 24) % 4) as usize]);
    (referrer, campaign)
}

/// The GET request of hit `h`, as `matomo.js` sends it behind a proxy on 127.0.0.1.
fn request(h: &Hit, out: &mut Vec<u8>) {
    let v = visitor(h.visitor);
    let mut url = page_url(h.page);
    let first = h.prev == u16::MAX;
    let (mut referrer, campaign) = if first {
        entry(h.visitor, h.visit)
    } else {
        (page_url(h.prev), None)
    };
    if let Some(c) = campaign {
        let _ = write!(
            url,
            "?utm_source=newsletter&utm_medium=email&utm_campaign={c}"
        );
    }
    if h.kind != Kind::PageView {
        referrer.clear();
    }
    let mut q = form_urlencoded::Serializer::new(String::with_capacity(600));
    let local = h.ts % 86_400;
    q.append_pair("idsite", "1")
        .append_pair("rec", "1")
        .append_pair("r", &format!("{:06}", mix(u64::from(h.pv)) % 1_000_000))
        .append_pair("h", &(local / 3600).to_string())
        .append_pair("m", &(local / 60 % 60).to_string())
        .append_pair("s", &(local % 60).to_string())
        .append_pair("url", &url)
        .append_pair("cdt", &h.ts.to_string())
        .append_pair("token_auth", TOKEN)
        .append_pair("send_image", "0")
        .append_pair("res", v.res)
        .append_pair("pv_id", &pv_id(h.pv));
    if let Some(id) = &v.cookie {
        q.append_pair("_id", id).append_pair("cookie", "1");
    }
    match h.kind {
        Kind::PageView => {
            q.append_pair("action_name", &page_title(h.page))
                .append_pair("urlref", &referrer)
                .append_pair("pf_net", &(mix(u64::from(h.pv)) % 80).to_string())
                .append_pair("pf_srv", &(20 + mix(u64::from(h.pv) ^ 3) % 200).to_string())
                .append_pair("pf_tfr", "3")
                .append_pair(
                    "pf_dm1",
                    &(100 + mix(u64::from(h.pv) ^ 4) % 900).to_string(),
                );
        }
        Kind::Ping => {
            q.append_pair("ping", "1");
        }
        Kind::Event => {
            let e = mix(u64::from(h.pv) ^ 5);
            q.append_pair(
                "e_c",
                ["Video", "Download", "Newsletter", "Form"][(e % 4) as usize],
            )
            .append_pair(
                "e_a",
                ["Play", "Click", "Subscribe", "Submit"][(e / 4 % 4) as usize],
            )
            .append_pair("e_n", &format!("item-{}", e / 16 % 200))
            .append_pair("e_v", &(e / 4096 % 300).to_string());
        }
        Kind::Outlink => {
            let e = mix(u64::from(h.pv) ^ 6);
            q.append_pair(
                "link",
                &format!("https://partner{}.example.com/landing", e % 150),
            );
        }
        Kind::Download => {
            let e = mix(u64::from(h.pv) ^ 7);
            q.append_pair(
                "download",
                &format!("https://www.example.org/files/report-{}.pdf", e % 80),
            );
        }
        Kind::Search => {
            let e = mix(u64::from(h.pv) ^ 8);
            let a = WORDS[(e % WORDS.len() as u64) as usize];
            let b = WORDS[(e / 64 % WORDS.len() as u64) as usize];
            q.append_pair("search", &format!("{a} {b}"))
                .append_pair("search_count", &(e % 40).to_string());
        }
    }
    let query = q.finish();
    out.clear();
    let _ = write!(
        Bytes(out),
        "GET /matomo.php?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {}\r\n\
         Accept-Language: {}\r\nX-Forwarded-For: {}\r\n\r\n",
        v.ua,
        v.lang,
        v.ip
    );
}

/// `fmt::Write` into a byte buffer.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn pv_id(pv: u32) -> String {
    const ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut x = mix(u64::from(pv) ^ 0x5bd1_e995);
    (0..6)
        .map(|_| {
            let c = ALNUM[(x % ALNUM.len() as u64) as usize] as char;
            x /= ALNUM.len() as u64;
            c
        })
        .collect()
}

#[derive(Default, Debug)]
struct Sent {
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    secs: f64,
}

/// Sends every hit of `plan` once over `conns` keep-alive connections (one request in flight
/// on each), building each request just before it is sent.
async fn send(addr: SocketAddr, plan: Arc<Vec<Hit>>, conns: usize) -> Sent {
    let next = Arc::new(AtomicUsize::new(0));
    let begun = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (next, plan) = (next.clone(), plan.clone());
        tasks.push(tokio::spawn(async move {
            let mut sent = Sent::default();
            let mut stream: Option<TcpStream> = None;
            let (mut req, mut buf) = (Vec::with_capacity(2048), Vec::with_capacity(4096));
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(hit) = plan.get(i) else { break };
                request(hit, &mut req);
                // One retry on a fresh connection: a keep-alive connection the server closed.
                let mut done = false;
                for _ in 0..2 {
                    if stream.is_none() {
                        match TcpStream::connect(addr).await {
                            Ok(s) => {
                                let _ = s.set_nodelay(true);
                                stream = Some(s);
                                buf.clear();
                            }
                            Err(_) => continue,
                        }
                    }
                    let s = stream.as_mut().expect("connected");
                    let answer = async {
                        s.write_all(&req).await?;
                        read_response(s, &mut buf).await
                    };
                    match tokio::time::timeout(Duration::from_secs(30), answer).await {
                        Ok(Ok(status)) => {
                            *sent.statuses.entry(status).or_default() += 1;
                            done = true;
                            break;
                        }
                        _ => stream = None,
                    }
                }
                if !done {
                    sent.errors += 1;
                }
            }
            sent
        }));
    }
    let mut all = Sent::default();
    for t in tasks {
        let s = t.await.expect("client task");
        for (k, v) in s.statuses {
            *all.statuses.entry(k).or_default() += v;
        }
        all.errors += s.errors;
    }
    all.secs = begun.elapsed().as_secs_f64();
    all
}

/// CPU seconds (user + system) a process has used so far, from `/proc/PID/stat`.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

/// CPU seconds used by the children this process has waited for (the `tally rollup` runs).
fn children_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: a signal to a process this harness started.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// A process held stopped (`SIGSTOP`) until this is dropped (`SIGCONT`).
struct Stopped(u32);

impl Stopped {
    fn new(pid: u32) -> Stopped {
        signal(pid, libc::SIGSTOP);
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(self.0, libc::SIGCONT);
    }
}

/// Runs `sql` on ClickHouse over HTTP and returns the answer (TSV).
async fn ch(http: &reqwest::Client, url: &str, sql: &str) -> String {
    let r = http
        .post(url)
        .query(&[("database", DB)])
        .body(sql.to_string())
        .timeout(Duration::from_secs(900))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let ok = r.status().is_success();
    let text = r.text().await.unwrap_or_default();
    assert!(ok, "{sql}: {text}");
    text
}

async fn count(http: &reqwest::Client, url: &str) -> u64 {
    ch(http, url, "SELECT count() FROM events")
        .await
        .trim()
        .parse()
        .unwrap_or(0)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (n, v) = l.rsplit_once(' ')?;
            (n.split('{').next()? == name).then(|| v.parse::<f64>().ok())?
        })
        .sum()
}

async fn metrics(http: &reqwest::Client, addr: SocketAddr) -> String {
    match http.get(format!("http://{addr}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until `events` holds `target` rows; returns (seconds to the first new row, seconds
/// to the last), counted from now. Gives up after `limit`.
async fn wait_stored(
    http: &reqwest::Client,
    url: &str,
    base: u64,
    target: u64,
    limit: Duration,
) -> (f64, f64, u64) {
    let begun = Instant::now();
    let mut first = None;
    loop {
        let n = count(http, url).await;
        let t = begun.elapsed().as_secs_f64();
        if n > base && first.is_none() {
            first = Some(t);
        }
        if n >= target || begun.elapsed() > limit {
            return (first.unwrap_or(t), t, n);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write_config(dir: &Path, ch_url: &str) -> PathBuf {
    let sections = format!(
        r#"[spool]
dir = "{spool}"
# A phase's million hits with ClickHouse stopped must fit (about 1.1 kB a hit in the spool).
max_bytes = 4294967296
"#,
        spool = dir.join("spool").display(),
    );
    let text = common::serve_toml(
        ch_url,
        DB,
        &format!("token_auth = \"{TOKEN}\"\n"),
        &sections,
    );
    let path = dir.join("tally.toml");
    std::fs::write(&path, text).expect("write tally.toml");
    path
}

/// `tally serve` on `config`, its log in `dir`; stopped with SIGTERM when dropped.
fn start_tally(config: &Path, dir: &Path) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
    cmd.args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stderr(std::fs::File::create(dir.join("tally.stderr.log")).expect("log"));
    Proc::start(
        "tally",
        cmd,
        "tally listening on ",
        dir.join("tally.stdout.log"),
    )
}

/// Runs `tally rollup --day DAY` once; returns its wall seconds and whether it succeeded.
fn rollup(config: &Path, day: &str, log: &Path) -> (f64, bool) {
    let begun = Instant::now();
    let ok = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["rollup", "--day", day, "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .expect("rollup log"),
        )
        .status()
        .is_ok_and(|s| s.success());
    (begun.elapsed().as_secs_f64(), ok)
}

fn describe(plan: &[Hit]) -> String {
    let mut kinds: BTreeMap<Kind, u64> = BTreeMap::new();
    for h in plan {
        *kinds.entry(h.kind).or_default() += 1;
    }
    let visitors = plan.last().map_or(0, |_| {
        let min = plan.iter().map(|h| h.visitor).min().unwrap_or(0);
        let max = plan.iter().map(|h| h.visitor).max().unwrap_or(0);
        max - min + 1
    });
    let pv = kinds.get(&Kind::PageView).copied().unwrap_or(0);
    format!(
        "{} hits, {visitors} visitors, {pv} page views ({:.2} hits a page view): {kinds:?}",
        plan.len(),
        plan.len() as f64 / pv.max(1) as f64
    )
}

fn day_string(day_start: u32) -> (String, String) {
    let d = chrono::DateTime::from_timestamp(i64::from(day_start), 0).expect("date");
    (
        d.format("%Y-%m-%d").to_string(),
        d.format("%Y%m%d").to_string(),
    )
}

/// Sizes of the active parts of `tables` in the partitions named `partitions`, printed.
async fn print_parts(http: &reqwest::Client, url: &str, partitions: &[&str]) -> String {
    let list = partitions
        .iter()
        .map(|p| format!("'{p}'"))
        .collect::<Vec<_>>()
        .join(",");
    ch(
        http,
        url,
        &format!(
            "SELECT table, partition, count() AS parts, sum(rows) AS n_rows, \
             sum(bytes_on_disk) AS disk_bytes, sum(data_compressed_bytes) AS compressed_bytes, \
             sum(data_uncompressed_bytes) AS uncompressed_bytes, \
             round(sum(bytes_on_disk) / sum(rows), 1) AS disk_per_row, \
             round(sum(data_uncompressed_bytes) / sum(rows), 1) AS raw_per_row \
             FROM system.parts WHERE active AND database = '{DB}' AND partition IN ({list}) \
             GROUP BY table, partition ORDER BY table, partition FORMAT PrettyCompactNoEscapes"
        ),
    )
    .await
}

struct Phase {
    name: &'static str,
    hits: u64,
    sent: Sent,
    accepted: f64,
    tally_cpu_ingest: f64,
    ch_cpu_ingest: f64,
    drain_secs: f64,
    drain_first: f64,
    tally_cpu_drain: f64,
    ch_cpu_drain: f64,
    rollups: u32,
}

fn main() -> ExitCode {
    let bench = std::env::args().any(|a| a == "--bench");
    let hits: usize = std::env::var("CAPACITY_HITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { 1_000_000 } else { 3_000 });
    let conns: usize = std::env::var("CAPACITY_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { 32 } else { 4 });
    println!(
        "capacity harness ({}): {hits} hits a phase, {conns} connections; nproc {}, {}, kernel {}, load {}",
        if bench { "bench" } else { "smoke round" },
        sh("nproc", &[]),
        sh("sh", &["-c", "free -g | awk '/Mem:/ {print $2 \" GiB\"}'"]),
        sh("uname", &["-r"]),
        loadavg()
    );

    let dir = tempfile::Builder::new()
        .prefix("tally-capacity-")
        .tempdir()
        .expect("temp dir");
    let ch_dir = dir.path().join("clickhouse");
    // The query log gives each rollup statement's time and peak memory.
    let server = EmbeddedClickHouse::start_with(
        &ch_dir,
        true,
        &ServerOptions {
            log_queries: true,
            ..ServerOptions::default()
        },
    )
    .expect("start ClickHouse 18.16");
    let ch_url = server.url().to_string();
    let ch_pid: u32 = std::fs::read_to_string(ch_dir.join("server.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .expect("the server's pid");
    let config = write_config(dir.path(), &ch_url);
    let rollup_log = dir.path().join("rollup.log");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(900))
        // ClickHouse closes an idle connection after 3 s (`keep_alive_timeout`); a pooled one
        // reused after a long rollup would fail.
        .pool_max_idle_per_host(0)
        .build()
        .expect("http client");
    // tally creates the database and its tables at start.
    let tally = start_tally(&config, dir.path());
    let tally_pid = tally.pid();
    let version = rt.block_on(ch(&http, &ch_url, "SELECT version()"));
    println!("ClickHouse {}", version.trim());

    let now = tally::time::now_unix();
    let today = now - now % 86_400;
    let days: Vec<u32> = (1..=3).map(|k| today - k * 86_400).collect();
    let (day1, day1_part) = day_string(days[0]);

    let mut phases: Vec<Phase> = Vec::new();
    let mut failed = false;
    let mut base = 0u64;
    for (p, name) in ["collect", "drain", "drain + rollup"]
        .into_iter()
        .enumerate()
    {
        let plan = Arc::new(plan_day(
            days[p],
            hits,
            p as u32 * 10_000_000,
            0x5eed + p as u64,
        ));
        println!("\n== phase {name}: {}", describe(&plan));
        let n = plan.len() as u64;
        let stop = p > 0;
        let before = rt.block_on(metrics(&http, tally.addr));
        // Resumed when this phase's hits are sent, or if the harness panics meanwhile (a
        // stopped server would not act on its supervisor's SIGTERM).
        let stopped = stop.then(|| Stopped::new(ch_pid));
        let (t0, c0) = (cpu_secs(tally_pid), cpu_secs(ch_pid));
        let sent = rt.block_on(send(tally.addr, plan.clone(), conns));
        let (t1, c1) = (cpu_secs(tally_pid), cpu_secs(ch_pid));
        let after = rt.block_on(metrics(&http, tally.addr));
        let accepted = metric(&after, "tally_hits_accepted_total")
            - metric(&before, "tally_hits_accepted_total");
        println!(
            "sent in {:.1} s: {:?}, {} connection errors; accepted {accepted}, dropped {}; \
             spool {} bytes; load {}",
            sent.secs,
            sent.statuses,
            sent.errors,
            metric(&after, "tally_hits_dropped_total")
                - metric(&before, "tally_hits_dropped_total"),
            metric(&after, "tally_spool_bytes"),
            loadavg()
        );
        // The rollup loop of phase 3 runs on its own thread while the spool drains.
        let stop_loop = Arc::new(AtomicBool::new(false));
        let runs = Arc::new(AtomicU64::new(0));
        let looper = (p == 2).then(|| {
            let (stop_loop, runs, config, day, log) = (
                stop_loop.clone(),
                runs.clone(),
                config.clone(),
                day1.clone(),
                rollup_log.clone(),
            );
            std::thread::spawn(move || {
                while !stop_loop.load(Ordering::Relaxed) {
                    let (_, ok) = rollup(&config, &day, &log);
                    if ok {
                        runs.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        });
        drop(stopped);
        let (d0, dc0) = (cpu_secs(tally_pid), cpu_secs(ch_pid));
        let target = base + accepted as u64;
        let (first, last, stored) = rt.block_on(wait_stored(
            &http,
            &ch_url,
            base,
            target,
            Duration::from_secs(1800),
        ));
        let (d1, dc1) = (cpu_secs(tally_pid), cpu_secs(ch_pid));
        stop_loop.store(true, Ordering::Relaxed);
        if let Some(l) = looper {
            let _ = l.join();
        }
        if stored != target {
            println!("NOT all stored: {stored} of {target}");
            failed = true;
        }
        println!(
            "stored {} rows {last:.1} s after the last answer (first new row after {first:.1} s); \
             CPU s while sending: tally {:.1}, ClickHouse {:.1}; until stored: tally {:.1}, ClickHouse {:.1}",
            stored - base,
            t1 - t0,
            c1 - c0,
            d1 - d0,
            dc1 - dc0
        );
        base = stored;
        phases.push(Phase {
            name,
            hits: n,
            sent,
            accepted,
            tally_cpu_ingest: t1 - t0,
            ch_cpu_ingest: c1 - c0,
            drain_secs: last,
            drain_first: first,
            tally_cpu_drain: d1 - d0,
            ch_cpu_drain: dc1 - dc0,
            rollups: runs.load(Ordering::Relaxed) as u32,
        });

        if p == 0 {
            // Storage of the day as written, then merged.
            print!(
                "events of {day1} as written:\n{}",
                rt.block_on(print_parts(&http, &ch_url, &[&day1_part]))
            );
            let c = cpu_secs(ch_pid);
            let begun = Instant::now();
            rt.block_on(ch(&http, &ch_url, "OPTIMIZE TABLE events FINAL"));
            println!(
                "OPTIMIZE TABLE events FINAL: {:.1} s, ClickHouse CPU {:.1} s",
                begun.elapsed().as_secs_f64(),
                cpu_secs(ch_pid) - c
            );
            print!(
                "events of {day1} merged:\n{}",
                rt.block_on(print_parts(&http, &ch_url, &[&day1_part]))
            );
            print!(
                "its largest columns (compressed, uncompressed bytes per event):\n{}",
                rt.block_on(ch(
                    &http,
                    &ch_url,
                    &format!(
                        "SELECT name, round(data_compressed_bytes / {n}, 2) AS compressed, \
                         round(data_uncompressed_bytes / {n}, 2) AS uncompressed \
                         FROM system.columns WHERE database = '{DB}' AND table = 'events' \
                         ORDER BY data_compressed_bytes DESC LIMIT 20 FORMAT PrettyCompactNoEscapes"
                    )
                ))
            );
            if let Ok(path) = std::env::var("CAPACITY_EXPORT") {
                let dump = rt.block_on(async {
                    http.post(&ch_url)
                        .query(&[("database", DB)])
                        .body("SELECT * FROM events FORMAT Native")
                        .send()
                        .await
                        .expect("export")
                        .bytes()
                        .await
                        .expect("export body")
                });
                std::fs::write(&path, &dump).expect("write the export");
                println!(
                    "day 1's events written to {path} ({} bytes, Native)",
                    dump.len()
                );
            }
            // The rollup of that day, alone.
            for run in 0..2 {
                let (c, u) = (cpu_secs(ch_pid), children_cpu_secs());
                let (secs, ok) = rollup(&config, &day1, &rollup_log);
                println!(
                    "tally rollup --day {day1} (run {}): {secs:.1} s, {}, ClickHouse CPU {:.1} s, \
                     tally rollup CPU {:.2} s; load {}",
                    run + 1,
                    if ok { "ok" } else { "FAILED (see rollup.log)" },
                    cpu_secs(ch_pid) - c,
                    children_cpu_secs() - u,
                    loadavg()
                );
                failed |= !ok;
            }
            rt.block_on(ch(&http, &ch_url, "SYSTEM FLUSH LOGS"));
            print!(
                "the rollup's statements (system.query_log, both runs):\n{}",
                rt.block_on(ch(
                    &http,
                    &ch_url,
                    "SELECT round(query_duration_ms / 1000, 1) AS secs, read_rows, \
                     formatReadableSize(memory_usage) AS memory, \
                     substring(replaceAll(replaceAll(query, '\\n', ' '), '  ', ''), 1, 60) AS statement \
                     FROM system.query_log WHERE type = 2 AND query_duration_ms > 200 \
                     AND http_user_agent LIKE 'clickhouse-rs/%' AND query NOT LIKE 'OPTIMIZE%' AND query NOT LIKE 'INSERT INTO `events`%' \
                     ORDER BY event_time FORMAT PrettyCompactNoEscapes"
                ))
            );
            print!(
                "the writer's inserts so far (system.query_log):\n{}",
                rt.block_on(ch(
                    &http,
                    &ch_url,
                    "SELECT count() AS inserts, sum(written_rows) AS rows, \
                     round(avg(query_duration_ms)) AS avg_ms, max(query_duration_ms) AS max_ms, \
                     formatReadableSize(avg(memory_usage)) AS avg_memory, \
                     formatReadableSize(max(memory_usage)) AS max_memory \
                     FROM system.query_log WHERE type = 2 AND query LIKE 'INSERT INTO `events`%' \
                     FORMAT PrettyCompactNoEscapes"
                ))
            );
            let visits = rt.block_on(ch(
                &http,
                &ch_url,
                &format!("SELECT count() FROM visits WHERE day = '{day1}'"),
            ));
            println!("visits of {day1}: {}", visits.trim());
            rt.block_on(ch(&http, &ch_url, "OPTIMIZE TABLE visits FINAL"));
            print!(
                "the day's visits and aggregates (visits merged):\n{}",
                rt.block_on(print_parts(&http, &ch_url, &[&day1, &day1_part]))
            );
        }
    }
    drop(tally);

    println!(
        "\n== summary (nproc {}, load {})",
        sh("nproc", &[]),
        loadavg()
    );
    println!(
        "{:<15} {:>9} {:>9} {:>8} {:>10} {:>12} {:>12} {:>9} {:>10} {:>12} {:>12} {:>8}",
        "phase",
        "hits",
        "accepted",
        "send s",
        "accepted/s",
        "tally cpu s",
        "ev/tally-cpu",
        "CH cpu s",
        "drain s",
        "drain rows/s",
        "CH cpu s/M",
        "rollups"
    );
    for p in &phases {
        let (rows_per_sec, ch_per_m, tally_ev_per_cpu) = if p.name == "collect" {
            (
                f64::NAN,
                (p.ch_cpu_ingest + p.ch_cpu_drain) / p.accepted * 1e6,
                p.accepted / (p.tally_cpu_ingest + p.tally_cpu_drain),
            )
        } else {
            (
                p.accepted / (p.drain_secs - p.drain_first).max(0.001),
                p.ch_cpu_drain / p.accepted * 1e6,
                p.accepted / p.tally_cpu_ingest,
            )
        };
        println!(
            "{:<15} {:>9} {:>9.0} {:>8.1} {:>10.0} {:>12.1} {:>12.0} {:>9.1} {:>10.1} {:>12.0} {:>12.1} {:>8}",
            p.name,
            p.hits,
            p.accepted,
            p.sent.secs,
            p.accepted / p.sent.secs,
            p.tally_cpu_ingest + p.tally_cpu_drain,
            tally_ev_per_cpu,
            p.ch_cpu_ingest + p.ch_cpu_drain,
            p.drain_secs,
            rows_per_sec,
            ch_per_m,
            p.rollups
        );
        if p.name != "collect" {
            println!(
                "{:<15} tally's writer: {:.1} CPU s for the drain, {:.0} rows per writer CPU-second; \
                 ingest into the spool alone: {:.0} hits per tally CPU-second",
                "",
                p.tally_cpu_drain,
                p.accepted / p.tally_cpu_drain,
                p.accepted / p.tally_cpu_ingest
            );
        }
    }
    let bad: u64 = phases
        .iter()
        .map(|p| {
            p.sent.errors
                + p.sent
                    .statuses
                    .iter()
                    .filter(|(s, _)| !(200..300).contains(*s))
                    .map(|(_, n)| n)
                    .sum::<u64>()
        })
        .sum();
    if bad > 0 {
        println!("{bad} hits not answered 2xx");
        failed = true;
    }
    if failed {
        println!(
            "FAILED; tally's log:\n{}\nrollup log:\n{}",
            std::fs::read_to_string(dir.path().join("tally.stderr.log")).unwrap_or_default(),
            std::fs::read_to_string(&rollup_log).unwrap_or_default()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
