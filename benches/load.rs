//! Load harness: `tally serve` and a bare hyper server, each as its own process, driven over
//! loopback with a realistic mix of Matomo hits; figures against issue #11's targets.
//!
//! `cargo bench --bench load` (how to run, what each phase measures, the figures:
//! `benches/README.md`).
//!
//! - **Processes.** A throw-away ClickHouse (temporary directory, removed at exit); **tally**
//!   is the binary cargo built for this bench (`CARGO_BIN_EXE_tally`: `target/release/tally`
//!   under `cargo bench`, rebuilt by cargo when stale; `target/debug/tally` under `cargo test`)
//!   run as `tally serve --config <tmp>/tally.toml` (see [`write_config`]); **bare** is this
//!   bench binary re-executed with `--bare-server`: hyper-util's auto builder on a runtime like
//!   tally's, reading each body and answering 204. Both are measured the same way: RSS from
//!   `/proc/<pid>/status` every second, tally's `/metrics` and `SELECT count() FROM events`
//!   every second.
//! - **Client.** Raw tokio TCP, HTTP/1.1 keep-alive, one request in flight per connection, on
//!   a single-threaded runtime (one core of the machine's two; tally and ClickHouse share the
//!   rest). Requests are prebuilt (see [`mixed_pool`]), so per request the client does one
//!   `write` and a minimal response parse.
//! - **Phases**: `max` (closed loop, bare then tally), `open` (constant arrival rate at half of
//!   tally's max, latency from the intended send time), `steady` (tally, 60 s at a rate near
//!   its max, sampled every second), `worst` (tally, maximum-size hits on many connections).
//!   After the load, the harness waits until ClickHouse holds every accepted hit and fails
//!   unless `stored == tally_hits_accepted_total` and the hits answered 2xx equal accepted +
//!   dropped (bots). The targets are reported, never asserted.
//!
//! Without cargo's `--bench` argument (`cargo test --benches`) every phase is a short smoke
//! round (a few seconds in all) that still makes the same checks.

mod common;
use common::{Proc, loadavg, mix, read_response, sh};

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// The database tally writes to on the throw-away ClickHouse.
const DB: &str = "load";

#[derive(Clone, Debug)]
struct Opts {
    bench: bool,
    /// Connections of the `max` and `open` phases.
    conns: usize,
    /// Warm-up (not counted) and measured seconds of the `max` and `open` phases.
    warmup: f64,
    secs: f64,
    /// Hits in a bulk request of the mix.
    bulk: usize,
    /// Length of the `steady` phase and its rate as a fraction of tally's max.
    steady_secs: f64,
    steady_fraction: f64,
    /// Length and connections of the `worst` phase.
    worst_secs: f64,
    worst_conns: usize,
    /// Longest wait for ClickHouse to hold every accepted hit after a phase.
    drain_secs: f64,
}

impl Opts {
    fn from_env_and_args() -> Opts {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let bench = args.iter().any(|a| a == "--bench");
        let get = |name: &str, default: f64| -> f64 {
            let flag = format!("--{}", name.to_lowercase().replace('_', "-"));
            let env = format!("LOAD_{name}");
            args.iter()
                .position(|a| *a == flag)
                .and_then(|i| args.get(i + 1))
                .cloned()
                .or_else(|| std::env::var(&env).ok())
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{env}/{flag}: `{v}` is not a number"))
                })
                .unwrap_or(default)
        };
        // (bench, smoke) defaults: `cargo test --benches` must stay a few seconds.
        let d = |bench_value: f64, smoke: f64| if bench { bench_value } else { smoke };
        Opts {
            bench,
            conns: get("CONNS", d(64.0, 4.0)).max(1.0) as usize,
            warmup: get("WARMUP", d(2.0, 0.2)),
            secs: get("SECS", d(10.0, 0.5)).max(0.1),
            bulk: get("BULK", 10.0).max(1.0) as usize,
            steady_secs: get("STEADY_SECS", d(60.0, 2.0)).max(1.0),
            steady_fraction: get("STEADY_FRACTION", 0.9),
            worst_secs: get("WORST_SECS", d(20.0, 1.0)).max(0.1),
            worst_conns: get("WORST_CONNS", d(256.0, 4.0)).max(1.0) as usize,
            drain_secs: get("DRAIN_SECS", 60.0),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// One prebuilt request and the hits it carries.
struct Req {
    bytes: Vec<u8>,
    hits: u64,
}

/// Desktop browsers (half of the hits).
const DESKTOP: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
];
/// Phones and tablets (45 %).
const MOBILE: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
];
/// Crawlers (5 %): answered 204 and dropped (`tally_hits_dropped_total{reason="bot"}`).
const BOTS: &[&str] = &[
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
];

fn user_agent(i: u64) -> &'static str {
    let h = mix(i);
    match h % 20 {
        0..=9 => DESKTOP[(h >> 8) as usize % DESKTOP.len()],
        10..=18 => MOBILE[(h >> 8) as usize % MOBILE.len()],
        _ => BOTS[(h >> 8) as usize % BOTS.len()],
    }
}

/// A client address as the trusted proxy on 127.0.0.1 forwards it: 90 % IPv4 across a few
/// public /8s, 10 % IPv6 in the documentation range.
fn client_address(i: u64) -> String {
    common::public_address(mix(i ^ 0x5555), &[81, 93, 145, 185, 203, 37, 62, 90])
}

/// The query string of hit `i` of kind `kind` (0..20 as in [`mixed_pool`]): a `matomo.js`
/// page view (url, title, referrer, visitor id, ...), turned into a custom event, a ping or a
/// content impression by the parameters the tracker adds for those.
fn hit_of_kind(i: u64, kind: u64) -> String {
    let mut q = common::hit_query(i);
    let mut extra = form_urlencoded::Serializer::new(String::new());
    match kind {
        0..=11 => {}
        12..=14 => {
            extra
                .append_pair("e_c", ["Video", "Download", "Newsletter"][(i % 3) as usize])
                .append_pair("e_a", ["Play", "Click", "Subscribe"][(i / 3 % 3) as usize])
                .append_pair("e_n", &format!("item-{}", i % 50))
                .append_pair("e_v", &(i % 300).to_string());
        }
        15..=17 => {
            extra.append_pair("ping", "1");
        }
        _ => {
            extra
                .append_pair("c_n", &format!("Banner {}", i % 12))
                .append_pair("c_p", &format!("/img/banner-{}.png", i % 12))
                .append_pair("c_t", &format!("https://www.example.org/offer/{}", i % 12));
        }
    }
    let extra = extra.finish();
    if !extra.is_empty() {
        q.push('&');
        q.push_str(&extra);
    }
    q
}

/// The realistic mix, by request: 60 % page views, 15 % custom events, 15 % pings
/// (heartbeats), 5 % content impressions, all GET, and 5 % bulk POSTs (`{"requests": [...]}`)
/// of `bulk` hits of the same mix (of ten: six page views, two events, a ping, an impression).
/// Every request has its own user agent (50 % desktop, 45 % mobile, 5 % crawlers),
/// `Accept-Language` and `X-Forwarded-For`; urls, titles, referrers and visitor ids vary with
/// the hit (`common::hit_query`).
fn mixed_pool(count: u64, bulk: usize) -> Vec<Req> {
    (0..count)
        .map(|i| {
            let kind = i % 20;
            let ua = user_agent(i);
            let lang = common::LANGUAGES[(mix(i) >> 16) as usize % common::LANGUAGES.len()];
            let xff = client_address(i);
            if kind < 19 {
                let bytes = format!(
                    "GET /matomo.php?{} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {ua}\r\n\
                     Accept-Language: {lang}\r\nX-Forwarded-For: {xff}\r\n\r\n",
                    hit_of_kind(i, kind)
                )
                .into_bytes();
                Req { bytes, hits: 1 }
            } else {
                const BULK_KINDS: [u64; 10] = [0, 1, 2, 3, 4, 5, 12, 13, 15, 18];
                // Queries are percent-encoded: nothing in them needs JSON escaping.
                let hits: Vec<String> = (0..bulk as u64)
                    .map(|k| {
                        let n = i * bulk as u64 + k;
                        format!("\"?{}\"", hit_of_kind(n, BULK_KINDS[k as usize % 10]))
                    })
                    .collect();
                let body = format!("{{\"requests\":[{}],\"send_image\":0}}", hits.join(","));
                let bytes = post(&body, ua, lang, &xff);
                Req {
                    bytes,
                    hits: bulk as u64,
                }
            }
        })
        .collect()
}

fn post(body: &str, ua: &str, lang: &str, xff: &str) -> Vec<u8> {
    format!(
        "POST /matomo.php HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {ua}\r\n\
         Accept-Language: {lang}\r\nX-Forwarded-For: {xff}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `len` characters that need no percent-encoding, varied by `i` (so hits differ).
fn filler(len: usize, i: u64) -> String {
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|k| ALNUM[(mix(i ^ (k as u64 / 16)) as usize).wrapping_add(k) % ALNUM.len()] as char)
        .collect()
}

/// A hit with every field tally stores at its limit (`[limits]` defaults): `url` and `urlref`
/// of `max_url_bytes`, the title and as many custom dimensions as fit of `max_field_bytes`,
/// the query string just under `max_uri_bytes`.
fn max_size_query(i: u64, limits: &tally::config::Limits) -> String {
    let url_len = limits.max_url_bytes;
    let field = limits.max_field_bytes;
    let base = |s: &str, n: usize| {
        let mut u = s.to_string();
        u.push_str(&filler(n - s.len(), i));
        u
    };
    let mut q = format!(
        "idsite=1&rec=1&_id={:016x}&pv_id={:06}&url={}&urlref={}&action_name={}",
        mix(i),
        i % 1_000_000,
        // `https://` and the first `/` are escaped (four `%XX`: eight bytes longer than decoded).
        base("https%3A%2F%2Fwww.example.org%2F", url_len + 8),
        base("https%3A%2F%2Fref.example.net%2F", url_len + 8),
        filler(field, i + 1),
    );
    for d in 1..=50u32 {
        let next = format!("&dimension{d}={}", filler(field, i + u64::from(d)));
        if q.len() + next.len() + 100 > limits.max_uri_bytes {
            break;
        }
        q.push_str(&next);
    }
    q
}

/// The `worst` input: maximum-size hits, as GETs (three in four) and as bulk POSTs whose body
/// is `max_body_bytes` exactly (as many maximum-size hits as fit, padded with JSON spaces).
fn worst_pool(count: u64) -> Vec<Req> {
    let limits = tally::config::Limits::default();
    (0..count)
        .map(|i| {
            let ua = DESKTOP[i as usize % DESKTOP.len()];
            let xff = client_address(i);
            if i % 4 != 3 {
                let bytes = format!(
                    "GET /matomo.php?{} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {ua}\r\n\
                     Accept-Language: {}\r\nX-Forwarded-For: {xff}\r\n\r\n",
                    max_size_query(i, &limits),
                    common::LANGUAGES[0]
                )
                .into_bytes();
                Req { bytes, hits: 1 }
            } else {
                let tail = "],\"send_image\":0}";
                let mut body = String::from("{\"requests\":[");
                let mut hits = 0u64;
                loop {
                    let entry = format!("\"?{}\"", max_size_query(i * 1000 + hits, &limits));
                    if body.len() + entry.len() + 1 + tail.len() > limits.max_body_bytes
                        || hits as usize >= limits.max_bulk_hits
                    {
                        break;
                    }
                    if hits > 0 {
                        body.push(',');
                    }
                    body.push_str(&entry);
                    hits += 1;
                }
                body.push_str(&" ".repeat(limits.max_body_bytes - body.len() - tail.len()));
                body.push_str(tail);
                Req {
                    bytes: post(&body, ua, common::LANGUAGES[1], &xff),
                    hits,
                }
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// How requests are paced.
#[derive(Clone, Copy, Debug)]
enum Pace {
    /// Each connection sends its next request as soon as the previous answer is read.
    Closed,
    /// Constant arrival rate (requests/s over all connections): request `k` of connection `c`
    /// is due at `start + (k * conns + c) / rate`, whatever happened to the ones before. A
    /// request whose connection was still waiting for an earlier answer when it was due is
    /// sent at once and its latency counts from when it was due, so queueing behind a slow
    /// answer is counted (no coordinated omission); one sent on time counts from its write
    /// (the timer's 1 ms granularity is the client's, not the server's).
    Open(f64),
}

/// What the client saw in one run.
#[derive(Default)]
struct Outcome {
    /// Responses by status, over the whole run (warm-up included).
    statuses: BTreeMap<u16, u64>,
    /// Hits in 2xx responses, over the whole run.
    hits_ok: u64,
    /// 2xx requests and their hits completed in the measured window.
    measured_ok: u64,
    measured_hits_ok: u64,
    /// Requests written in the measured window (open loop: below the rate when behind).
    measured_sent: u64,
    /// Latencies (µs): open loop from when a request was due if it was sent late, else (and in
    /// a closed loop) from its write.
    latencies: Vec<u32>,
    /// Latencies (µs) from the actual write, open loop only.
    service: Vec<u32>,
    /// Connection errors.
    errors: u64,
    window: Duration,
}

impl Outcome {
    fn not_ok(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }
    fn rps(&self) -> f64 {
        self.measured_ok as f64 / self.window.as_secs_f64()
    }
    fn hps(&self) -> f64 {
        self.measured_hits_ok as f64 / self.window.as_secs_f64()
    }
    fn merge(&mut self, o: Outcome) {
        for (s, n) in o.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.hits_ok += o.hits_ok;
        self.measured_ok += o.measured_ok;
        self.measured_hits_ok += o.measured_hits_ok;
        self.measured_sent += o.measured_sent;
        self.latencies.extend(o.latencies);
        self.service.extend(o.service);
        self.errors += o.errors;
    }
}

/// Percentile `p` (0..1) of sorted microseconds, in ms.
fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// One run of the client against `addr`.
struct Run {
    addr: SocketAddr,
    conns: usize,
    warmup: f64,
    secs: f64,
    pace: Pace,
    pool: Arc<Vec<Req>>,
    /// Hits answered 2xx so far, read by the sampler every second.
    answered: Arc<AtomicU64>,
}

async fn drive(run: &Run) -> Outcome {
    let start = Instant::now();
    let warm_end = start + Duration::from_secs_f64(run.warmup);
    let end = warm_end + Duration::from_secs_f64(run.secs);
    let conns = run.conns;
    let tasks: Vec<_> = (0..conns)
        .map(|c| {
            let pool = run.pool.clone();
            let answered = run.answered.clone();
            let (addr, pace) = (run.addr, run.pace);
            tokio::spawn(async move {
                let mut out = Outcome::default();
                let mut stream = match TcpStream::connect(addr).await {
                    Ok(s) => s,
                    Err(_) => {
                        out.errors += 1;
                        return out;
                    }
                };
                let _ = stream.set_nodelay(true);
                let mut buf = Vec::with_capacity(16 * 1024);
                let mut next = c;
                let mut k = 0u64;
                loop {
                    let intended = match pace {
                        Pace::Closed => Instant::now(),
                        Pace::Open(rate) => {
                            let slot = (k * conns as u64 + c as u64) as f64 / rate;
                            start + Duration::from_secs_f64(slot)
                        }
                    };
                    if intended >= end {
                        break;
                    }
                    // Behind schedule: the connection was busy when this request was due.
                    let late = Instant::now() > intended;
                    if !late {
                        tokio::time::sleep_until(intended.into()).await;
                    }
                    let req = &pool[next % pool.len()];
                    next += conns;
                    k += 1;
                    let sent = Instant::now();
                    if sent >= warm_end && sent <= end {
                        out.measured_sent += 1;
                    }
                    if stream.write_all(&req.bytes).await.is_err() {
                        out.errors += 1;
                        break;
                    }
                    let status = match read_response(&mut stream, &mut buf).await {
                        Ok(s) => s,
                        Err(_) => {
                            out.errors += 1;
                            break;
                        }
                    };
                    let done = Instant::now();
                    *out.statuses.entry(status).or_default() += 1;
                    let ok = (200..300).contains(&status);
                    if ok {
                        out.hits_ok += req.hits;
                        answered.fetch_add(req.hits, Ordering::Relaxed);
                    }
                    if done >= warm_end && done <= end {
                        let us = |d: Duration| d.as_micros().min(u32::MAX as u128) as u32;
                        out.latencies
                            .push(us(done - if late { intended } else { sent }));
                        if let Pace::Open(_) = pace {
                            out.service.push(us(done - sent));
                        }
                        if ok {
                            out.measured_ok += 1;
                            out.measured_hits_ok += req.hits;
                        }
                    }
                }
                out
            })
        })
        .collect();
    let mut total = Outcome {
        window: Duration::from_secs_f64(run.secs),
        ..Outcome::default()
    };
    for t in tasks {
        total.merge(t.await.expect("client task"));
    }
    total.latencies.sort_unstable();
    total.service.sort_unstable();
    total
}

// ---------------------------------------------------------------------------------------------
// Servers as processes
// ---------------------------------------------------------------------------------------------

/// The harness's tally configuration ([`common::serve_toml`]), then `LOAD_EXTRA_TOML`
/// (sections only; `{tmp}` in it is replaced by this run's temporary directory), e.g.
/// `LOAD_EXTRA_TOML='[spool]
/// dir = "{tmp}/spool"'`.
fn write_config(tmp: &Path, ch_url: &str) -> PathBuf {
    let mut extra = std::env::var("LOAD_EXTRA_TOML")
        .unwrap_or_default()
        .replace("{tmp}", &tmp.display().to_string());
    if !extra.contains("[spool]") {
        // The spool in its default mode, in the run's own directory.
        extra.push_str(&format!(
            "\n[spool]\ndir = \"{}\"\n",
            tmp.join("spool").display()
        ));
    }
    let text = common::serve_toml(ch_url, DB, "", &extra);
    let path = tmp.join("tally.toml");
    std::fs::write(&path, text).expect("write tally.toml");
    path
}

/// `bench --bare-server`: the ceiling. hyper-util's auto builder on a multi-thread runtime
/// like tally's, `TCP_NODELAY` as in `server::serve`, reading each body and answering 204
/// with `Cache-Control: no-store` like an accepted hit. Exits when its stdin closes (the
/// harness ended, however it ended).
fn bare_server() -> ExitCode {
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("server runtime");
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!(
            "bare listening on {}",
            listener.local_addr().expect("address")
        );
        let builder = auto::Builder::new(TokioExecutor::new());
        loop {
            let Ok((stream, _peer)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service = service_fn(|req: Request<Incoming>| async move {
                let _ = req.into_body().collect().await;
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::NO_CONTENT;
                r.headers_mut().insert(
                    hyper::header::CACHE_CONTROL,
                    hyper::header::HeaderValue::from_static("no-store"),
                );
                Ok::<_, Infallible>(r)
            });
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Sampling: RSS, /metrics, rows stored
// ---------------------------------------------------------------------------------------------

/// `VmRSS` (or another `Vm*` line) of `pid` in kB.
fn vm_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The figures read from tally's `/metrics` (each family summed over its labels). Names of
/// today and of the contract of issue #11 are both read, so the harness works before and
/// after the spool lands.
#[derive(Clone, Debug, Default)]
struct TallyMetrics {
    accepted: f64,
    written: f64,
    dropped: f64,
    rejected: f64,
    /// `tally_queue_depth` (in-memory queue) if exported.
    queued: Option<f64>,
    /// `tally_spool_bytes` if exported.
    spool_bytes: Option<f64>,
}

fn parse_metrics(text: &str) -> TallyMetrics {
    let mut families: BTreeMap<&str, f64> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name_labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = name_labels.split('{').next().unwrap_or(name_labels);
        if let Ok(v) = value.parse::<f64>() {
            *families.entry(name).or_default() += v;
        }
    }
    let first = |names: &[&str]| names.iter().find_map(|n| families.get(n).copied());
    TallyMetrics {
        accepted: first(&["tally_hits_accepted_total", "tally_accepted_total"]).unwrap_or(0.0),
        written: first(&["tally_events_written_total", "tally_written_total"]).unwrap_or(0.0),
        dropped: first(&["tally_hits_dropped_total", "tally_dropped_total"]).unwrap_or(0.0),
        rejected: first(&["tally_requests_rejected_total", "tally_rejected_total"]).unwrap_or(0.0),
        queued: first(&["tally_queue_depth"]),
        spool_bytes: first(&["tally_spool_bytes"]),
    }
}

async fn read_metrics(http: &reqwest::Client, addr: SocketAddr) -> Option<TallyMetrics> {
    let r = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    Some(parse_metrics(&r.text().await.ok()?))
}

async fn count_stored(ch_url: &str) -> Option<u64> {
    tokio::time::timeout(Duration::from_secs(5), common::count_events(ch_url, DB))
        .await
        .ok()
}

/// One second's sample.
#[derive(Clone, Debug)]
struct Sample {
    /// Seconds since the harness started.
    t: f64,
    phase: &'static str,
    /// Hits answered 2xx by tally so far (client side).
    answered: u64,
    tally_rss_kb: Option<u64>,
    bare_rss_kb: Option<u64>,
    metrics: Option<TallyMetrics>,
    stored: Option<u64>,
}

/// Samples every second on its own thread (and runtime) until dropped.
struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    phase: Arc<Mutex<&'static str>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(
        tally: (u32, SocketAddr),
        bare_pid: u32,
        ch_url: String,
        answered: Arc<AtomicU64>,
    ) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let phase = Arc::new(Mutex::new("start"));
        let stop = Arc::new(AtomicBool::new(false));
        let begun = Instant::now();
        let thread = {
            let (samples, phase, stop) = (samples.clone(), phase.clone(), stop.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("sampler runtime");
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(2))
                    .build()
                    .expect("http client");
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let t = begun.elapsed().as_secs_f64();
                    let answered = answered.load(Ordering::Relaxed);
                    let tally_rss_kb = vm_kb(tally.0, "VmRSS");
                    let bare_rss_kb = vm_kb(bare_pid, "VmRSS");
                    let (metrics, stored) = rt.block_on(async {
                        tokio::join!(read_metrics(&http, tally.1), count_stored(&ch_url))
                    });
                    let phase = *phase.lock().expect("phase");
                    samples.lock().expect("samples").push(Sample {
                        t,
                        phase,
                        answered,
                        tally_rss_kb,
                        bare_rss_kb,
                        metrics,
                        stored,
                    });
                    next += Duration::from_secs(1);
                    while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        };
        Sampler {
            samples,
            phase,
            stop,
            thread: Some(thread),
        }
    }

    fn set_phase(&self, p: &'static str) {
        *self.phase.lock().expect("phase") = p;
    }

    fn samples(&self) -> Vec<Sample> {
        self.samples.lock().expect("samples").clone()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until ClickHouse holds as many rows as tally accepted (or `limit` passes); returns
/// (seconds waited, accepted, stored, metrics).
async fn drain(
    http: &reqwest::Client,
    tally: SocketAddr,
    ch_url: &str,
    limit: f64,
) -> (f64, u64, u64, TallyMetrics) {
    let begun = Instant::now();
    loop {
        let m = read_metrics(http, tally).await.unwrap_or_default();
        let stored = count_stored(ch_url).await.unwrap_or(0);
        let accepted = m.accepted as u64;
        if stored >= accepted || begun.elapsed().as_secs_f64() > limit {
            return (begun.elapsed().as_secs_f64(), accepted, stored, m);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// A row of the results table.
struct Row {
    phase: String,
    server: &'static str,
    conns: usize,
    outcome: Outcome,
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--bare-server") {
        return bare_server();
    }
    let opts = Opts::from_env_and_args();
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    println!(
        "load harness ({}): {} CPUs, {}, kernel {}, commit {}, tally {}",
        if opts.bench { "bench" } else { "smoke round" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem_total.split_whitespace().collect::<Vec<_>>().join(" "),
        sh("uname", &["-r"]),
        sh("git", &["rev-parse", "--short", "HEAD"]),
        env!("CARGO_BIN_EXE_tally"),
    );
    println!(
        "options: {opts:?}; LOAD_EXTRA_TOML {:?}; loadavg before: {}",
        std::env::var("LOAD_EXTRA_TOML").unwrap_or_default(),
        loadavg()
    );

    let tmp = tempfile::Builder::new()
        .prefix("tally-load-")
        .tempdir()
        .expect("temp dir");
    let ch = common::clickhouse();
    let ch_url = ch.url().to_string();
    let config = write_config(tmp.path(), &ch_url);

    let mut tally_cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
    tally_cmd
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stderr(
            std::fs::File::create(tmp.path().join("tally.stderr.log")).expect("tally stderr log"),
        );
    let mut tally = Proc::start(
        "tally",
        tally_cmd,
        "tally listening on ",
        tmp.path().join("tally.stdout.log"),
    );
    let mut bare_cmd = Command::new(std::env::current_exe().expect("bench binary"));
    bare_cmd.arg("--bare-server").stdin(Stdio::piped());
    let bare = Proc::start(
        "bare",
        bare_cmd,
        "bare listening on ",
        tmp.path().join("bare.log"),
    );

    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");
    let tally_answered = Arc::new(AtomicU64::new(0));
    let bare_answered = Arc::new(AtomicU64::new(0));
    let sampler = Sampler::start(
        (tally.pid(), tally.addr),
        bare.pid(),
        ch_url.clone(),
        tally_answered.clone(),
    );

    let built = Instant::now();
    let mixed = Arc::new(mixed_pool(20_011, opts.bulk));
    let worst = Arc::new(worst_pool(if opts.bench { 64 } else { 8 }));
    let mix_hits: u64 = mixed.iter().map(|r| r.hits).sum();
    println!(
        "request pools built in {:.1} s: mix {} requests, {:.2} hits per request, {:.0} bytes on \
         average; worst {} requests, {:.0} bytes on average, {} hits",
        built.elapsed().as_secs_f64(),
        mixed.len(),
        mix_hits as f64 / mixed.len() as f64,
        mixed.iter().map(|r| r.bytes.len()).sum::<usize>() as f64 / mixed.len() as f64,
        worst.len(),
        worst.iter().map(|r| r.bytes.len()).sum::<usize>() as f64 / worst.len() as f64,
        worst.iter().map(|r| r.hits).sum::<u64>(),
    );

    let run = |server: &Proc, answered: &Arc<AtomicU64>, conns, warmup, secs, pace, pool| {
        client.block_on(drive(&Run {
            addr: server.addr,
            conns,
            warmup,
            secs,
            pace,
            pool,
            answered: answered.clone(),
        }))
    };
    let mut rows: Vec<Row> = Vec::new();

    // 1. Max accepted hits/s, closed loop.
    sampler.set_phase("max bare");
    let max_bare = run(
        &bare,
        &bare_answered,
        opts.conns,
        opts.warmup,
        opts.secs,
        Pace::Closed,
        mixed.clone(),
    );
    sampler.set_phase("max tally");
    let max_tally = run(
        &tally,
        &tally_answered,
        opts.conns,
        opts.warmup,
        opts.secs,
        Pace::Closed,
        mixed.clone(),
    );
    let tally_max_rps = max_tally.rps().max(1.0);
    let tally_max_hps = max_tally.hps();
    rows.push(Row {
        phase: "max (closed loop)".into(),
        server: "bare",
        conns: opts.conns,
        outcome: max_bare,
    });
    rows.push(Row {
        phase: "max (closed loop)".into(),
        server: "tally",
        conns: opts.conns,
        outcome: max_tally,
    });
    client.block_on(drain(&http, tally.addr, &ch_url, opts.drain_secs));

    // 2. Open loop at half of tally's max.
    let half = tally_max_rps / 2.0;
    let open_phase = format!("open {half:.0} req/s");
    sampler.set_phase("open bare");
    let open_bare = run(
        &bare,
        &bare_answered,
        opts.conns,
        opts.warmup,
        opts.secs,
        Pace::Open(half),
        mixed.clone(),
    );
    sampler.set_phase("open tally");
    let open_tally = run(
        &tally,
        &tally_answered,
        opts.conns,
        opts.warmup,
        opts.secs,
        Pace::Open(half),
        mixed.clone(),
    );
    rows.push(Row {
        phase: open_phase.clone(),
        server: "bare",
        conns: opts.conns,
        outcome: open_bare,
    });
    rows.push(Row {
        phase: open_phase,
        server: "tally",
        conns: opts.conns,
        outcome: open_tally,
    });
    client.block_on(drain(&http, tally.addr, &ch_url, opts.drain_secs));

    // 3. Steady run near the max, sampled every second.
    let steady_rate = tally_max_rps * opts.steady_fraction;
    sampler.set_phase("steady");
    let steady_from = sampler.samples().len();
    let steady = run(
        &tally,
        &tally_answered,
        opts.conns,
        0.0,
        opts.steady_secs,
        Pace::Open(steady_rate),
        mixed.clone(),
    );
    sampler.set_phase("steady drain");
    let (steady_drain, ..) = client.block_on(drain(&http, tally.addr, &ch_url, opts.drain_secs));
    let steady_samples: Vec<Sample> = sampler.samples()[steady_from..]
        .iter()
        .filter(|s| s.phase == "steady")
        .cloned()
        .collect();
    rows.push(Row {
        phase: format!("steady {steady_rate:.0} req/s"),
        server: "tally",
        conns: opts.conns,
        outcome: steady,
    });

    // 4. Worst input: maximum-size hits on many connections.
    sampler.set_phase("worst");
    let worst_out = run(
        &tally,
        &tally_answered,
        opts.worst_conns,
        0.0,
        opts.worst_secs,
        Pace::Closed,
        worst,
    );
    rows.push(Row {
        phase: "worst (max-size hits)".into(),
        server: "tally",
        conns: opts.worst_conns,
        outcome: worst_out,
    });
    sampler.set_phase("worst drain");
    let (worst_drain, accepted, stored, final_metrics) =
        client.block_on(drain(&http, tally.addr, &ch_url, opts.drain_secs));
    std::thread::sleep(Duration::from_millis(1100)); // one more sample after the drain
    let tally_hwm = vm_kb(tally.pid(), "VmHWM");
    let bare_hwm = vm_kb(bare.pid(), "VmHWM");
    let samples = sampler.samples();
    drop(sampler);
    let (exit_took, exit_status) = tally.stop(Duration::from_secs(60));
    drop(bare);
    drop(ch);

    // Report.
    let answered = tally_answered.load(Ordering::Relaxed);
    println!();
    print_rows(&rows);
    print_steady(&steady_samples, steady_drain);
    print_rss(&samples, tally_hwm, bare_hwm);
    println!(
        "\nafter the worst phase: ClickHouse held every accepted hit {worst_drain:.1} s after the \
         load; tally exited {exit_took:.1?} after SIGTERM ({exit_status}); loadavg after: {}",
        loadavg()
    );
    let ratio = tally_max_hps / rows[0].outcome.hps();
    let open_p99 = percentile(&rows[3].outcome.latencies, 0.99);
    let rss_max = samples
        .iter()
        .filter_map(|s| s.tally_rss_kb)
        .max()
        .unwrap_or(0);
    let rss_peak = tally_hwm.unwrap_or(rss_max).max(rss_max);
    println!("\ntargets (figures, not assertions):");
    println!(
        "  accepted >= 0.8 x bare:        {:.2} ({:.0} of {:.0} hits/s)  {}",
        ratio,
        tally_max_hps,
        rows[0].outcome.hps(),
        verdict(ratio >= 0.8)
    );
    let (steady_ok, steady_text) = steady_verdict(&steady_samples);
    println!(
        "  stored = accepted over {:.0} s:   {steady_text}  {}",
        opts.steady_secs,
        verdict(steady_ok)
    );
    println!(
        "  p99 < 5 ms at half load:       {open_p99:.2} ms  {}",
        verdict(open_p99 < 5.0)
    );
    println!(
        "  RSS < 150 MB under any input:  {:.0} MB at most sampled, {:.0} MB peak (VmHWM)  {}",
        rss_max as f64 / 1024.0,
        rss_peak as f64 / 1024.0,
        verdict(rss_peak < 150 * 1024)
    );

    // The checks that fail the harness: nothing accepted is missing, nothing answered is
    // unaccounted for.
    let mut failed = false;
    if stored != accepted {
        failed = true;
        eprintln!(
            "FAILED: ClickHouse holds {stored} rows, tally accepted {accepted} \
             (waited {worst_drain:.1} s); metrics {final_metrics:?}"
        );
    }
    let accounted = (final_metrics.accepted + final_metrics.dropped) as u64;
    if answered != accounted {
        failed = true;
        eprintln!(
            "FAILED: {answered} hits answered 2xx, tally counted {accounted} accepted + dropped"
        );
    }
    if answered == 0 {
        failed = true;
        eprintln!("FAILED: no hit answered 2xx");
    }
    println!(
        "checks: {stored} stored = {accepted} accepted; {answered} answered 2xx = {} accepted + \
         {} dropped (bots); {} rejected",
        final_metrics.accepted, final_metrics.dropped, final_metrics.rejected
    );
    if failed {
        let log = std::fs::read_to_string(tmp.path().join("tally.stderr.log")).unwrap_or_default();
        eprintln!("tally's log:\n{log}");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn print_rows(rows: &[Row]) {
    println!(
        "{:<22} {:<6} {:>5} {:>10} {:>10} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7}",
        "phase",
        "server",
        "conns",
        "req/s",
        "hits/s",
        "ratio",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "svc p99",
        "sent/s",
        "non-2xx"
    );
    let mut bare_hps = f64::NAN;
    for r in rows {
        let o = &r.outcome;
        let ratio = if r.server == "bare" {
            bare_hps = o.hps();
            "1.00".to_string()
        } else if r.phase.starts_with("max") {
            format!("{:.2}", o.hps() / bare_hps)
        } else {
            "-".into()
        };
        let svc = if o.service.is_empty() {
            "-".into()
        } else {
            format!("{:.2}", percentile(&o.service, 0.99))
        };
        println!(
            "{:<22} {:<6} {:>5} {:>10.0} {:>10.0} {:>6} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>9.0} {:>7}",
            r.phase,
            r.server,
            r.conns,
            o.rps(),
            o.hps(),
            ratio,
            percentile(&o.latencies, 0.50),
            percentile(&o.latencies, 0.99),
            percentile(&o.latencies, 0.999),
            svc,
            o.measured_sent as f64 / o.window.as_secs_f64(),
            o.not_ok(),
        );
        if o.not_ok() > 0 || o.errors > 0 {
            println!(
                "{:<22} statuses {:?}, connection errors {}",
                "", o.statuses, o.errors
            );
        }
    }
    println!(
        "latency: open loop from when a request was due if its connection was still busy then, \
         else from its write (svc p99: always from the write); closed loop from the write. \
         sent/s: requests written in the measured window."
    );
}

/// Per-second table of the steady phase.
fn print_steady(samples: &[Sample], drain_secs: f64) {
    println!(
        "\nsteady phase, every second: hits answered (client), accepted and written (tally's \
         /metrics), stored (SELECT count() FROM events), backlog = accepted - stored"
    );
    println!(
        "{:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>7}",
        "t s",
        "answered/s",
        "accepted/s",
        "written/s",
        "stored/s",
        "stored",
        "backlog",
        "queue",
        "RSS MB"
    );
    for w in samples.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let dt = b.t - a.t;
        let acc = |s: &Sample| s.metrics.as_ref().map_or(f64::NAN, |m| m.accepted);
        let wr = |s: &Sample| s.metrics.as_ref().map_or(f64::NAN, |m| m.written);
        let st = |s: &Sample| s.stored.map_or(f64::NAN, |v| v as f64);
        let queue = b
            .metrics
            .as_ref()
            .and_then(|m| m.spool_bytes.or(m.queued))
            .map_or("-".to_string(), |v| format!("{v:.0}"));
        println!(
            "{:>6.1} {:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>9.0} {:>9} {:>7.1}",
            b.t,
            (b.answered - a.answered) as f64 / dt,
            (acc(b) - acc(a)) / dt,
            (wr(b) - wr(a)) / dt,
            (st(b) - st(a)) / dt,
            st(b),
            acc(b) - st(b),
            queue,
            b.tally_rss_kb.unwrap_or(0) as f64 / 1024.0,
        );
    }
    println!("(queue: tally_spool_bytes if exported, else tally_queue_depth in events)");
    println!("every accepted hit stored {drain_secs:.1} s after the steady load ended");
}

/// Over the sampled steady window: accepted and stored per second, the backlog at its start,
/// end and largest, and whether it grew (the last fifth's mean against the first fifth's, with
/// one second of accepted hits as slack: a batch is flushed at least every second).
fn steady_verdict(samples: &[Sample]) -> (bool, String) {
    let points: Vec<(f64, f64, f64)> = samples
        .iter()
        .filter_map(|s| Some((s.t, s.metrics.as_ref()?.accepted, s.stored? as f64)))
        .collect();
    if points.len() < 2 {
        return (false, "too few samples".into());
    }
    let (t0, a0, s0) = points[0];
    let (t1, a1, s1) = points[points.len() - 1];
    let dt = t1 - t0;
    let rate = (a1 - a0) / dt;
    let backlog: Vec<f64> = points.iter().map(|(_, a, s)| a - s).collect();
    let fifth = (backlog.len() / 5).max(1);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let first = mean(&backlog[..fifth]);
    let last = mean(&backlog[backlog.len() - fifth..]);
    let max = backlog.iter().copied().fold(0.0, f64::max);
    let growing = last > first + rate;
    let mut text = String::new();
    let _ = write!(
        text,
        "over {dt:.0} s accepted {:.0}/s, stored {:.0}/s; backlog {:.0} -> {:.0} (max {max:.0}; \
         mean of first/last fifth {first:.0}/{last:.0}){}",
        rate,
        (s1 - s0) / dt,
        backlog[0],
        backlog[backlog.len() - 1],
        if growing {
            ", GROWING"
        } else {
            ", not growing"
        }
    );
    (!growing && (s1 - s0) >= (a1 - a0) - rate, text)
}

/// RSS by phase (min / median / max of the per-second samples).
fn print_rss(samples: &[Sample], tally_hwm: Option<u64>, bare_hwm: Option<u64>) {
    println!("\nRSS by phase, MB (min / median / max of the per-second samples):");
    let mut phases: Vec<&'static str> = Vec::new();
    for s in samples {
        if !phases.contains(&s.phase) {
            phases.push(s.phase);
        }
    }
    let stats = |v: &mut Vec<u64>| -> String {
        if v.is_empty() {
            return "-".into();
        }
        v.sort_unstable();
        let mb = |kb: u64| kb as f64 / 1024.0;
        format!(
            "{:.1} / {:.1} / {:.1}",
            mb(v[0]),
            mb(v[v.len() / 2]),
            mb(v[v.len() - 1])
        )
    };
    println!(
        "{:<14} {:>8} {:>24} {:>24}",
        "phase", "samples", "tally", "bare"
    );
    for p in phases.iter().copied().chain(std::iter::once("whole run")) {
        let of: Vec<&Sample> = samples
            .iter()
            .filter(|s| p == "whole run" || s.phase == p)
            .collect();
        let mut t: Vec<u64> = of.iter().filter_map(|s| s.tally_rss_kb).collect();
        let mut b: Vec<u64> = of.iter().filter_map(|s| s.bare_rss_kb).collect();
        println!(
            "{:<14} {:>8} {:>24} {:>24}",
            p,
            of.len(),
            stats(&mut t),
            stats(&mut b)
        );
    }
    let mb = |kb: Option<u64>| kb.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0));
    println!(
        "peak RSS (VmHWM) at the end: tally {} MB, bare {} MB",
        mb(tally_hwm),
        mb(bare_hwm)
    );
}
