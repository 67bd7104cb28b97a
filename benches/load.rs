//! Load harness: events per second through tally's real HTTP endpoint, against a bare hyper
//! server in the same run as the ceiling, with every answered event checked in ClickHouse.
//!
//! `cargo bench --bench load` (figures and how to read them: `docs/performance.md`).
//!
//! - A throw-away ClickHouse is started (temporary directory, removed at exit).
//! - Each server runs in-process on 127.0.0.1:0 on a fresh tokio runtime built as `tally`'s
//!   `main` builds it (multi-thread, one worker per core): first the **bare** server (hyper-util
//!   `auto::Builder`, graceful shutdown and `TCP_NODELAY` as in `server::serve`; it reads the
//!   body and answers 204 to everything), then **tally** (`App` + `server::serve`, default sink
//!   settings, `127.0.0.0/8` trusted as proxy).
//! - One client drives both the same way: `LOAD_CONNS` keep-alive HTTP/1.1 connections on raw
//!   tokio TCP, on a single-threaded runtime on the main thread (so the client takes at most one
//!   of the machine's cores, beside the servers' workers and ClickHouse). Requests are prebuilt
//!   before the clock starts (a pool of distinct realistic `matomo.js` hits: urls, titles,
//!   referrers, visitor ids, user agents, languages and `X-Forwarded-For` addresses all vary),
//!   so the client's per-request work is one `write` and a minimal response parse; with
//!   `LOAD_PIPELINE=1` (default) each connection has one request in flight, as browsers do.
//! - Each run lasts `LOAD_WARMUP` (default 1 s, not counted) + `LOAD_SECS` (default 5 s);
//!   requests/s, events/s and latency percentiles count the responses completed in the
//!   measured window. Latency is from writing the request to reading the whole response.
//! - Modes: single GET hits, and bulk POSTs of `LOAD_BULK` hits (default 100; 0 skips it).
//! - After each tally run the server is stopped, the sink writer finishes (flushes), and the
//!   rows in ClickHouse are counted: they must equal the 204 answers times the hits per
//!   request, or the harness fails. `drain` is how long the flush took after the load ended,
//!   and `stored/s` is rows stored over the whole run including that drain.
//!
//! Options: environment `LOAD_SECS`, `LOAD_WARMUP`, `LOAD_CONNS`, `LOAD_BULK`,
//! `LOAD_PIPELINE`, or the same as arguments after `--` (`--secs 10 --conns 32`). Without
//! cargo's `--bench` argument (`cargo test --benches`) it runs a short smoke round instead.

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

#[derive(Clone, Debug)]
struct Opts {
    secs: f64,
    warmup: f64,
    conns: usize,
    bulk: usize,
    pipeline: usize,
}

impl Opts {
    fn from_env_and_args() -> Opts {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let bench = args.iter().any(|a| a == "--bench");
        let get = |name: &str, flag: &str, default: f64| -> f64 {
            let from_arg = args
                .iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .cloned();
            from_arg
                .or_else(|| std::env::var(name).ok())
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{name}/{flag}: `{v}` is not a number"))
                })
                .unwrap_or(default)
        };
        // `cargo test --benches` runs this without `--bench`: a short smoke round then.
        let (secs, warmup, conns, bulk) = if bench {
            (5.0, 1.0, 64.0, 100.0)
        } else {
            (0.5, 0.2, 4.0, 10.0)
        };
        Opts {
            secs: get("LOAD_SECS", "--secs", secs),
            warmup: get("LOAD_WARMUP", "--warmup", warmup),
            conns: get("LOAD_CONNS", "--conns", conns).max(1.0) as usize,
            bulk: get("LOAD_BULK", "--bulk", bulk) as usize,
            pipeline: get("LOAD_PIPELINE", "--pipeline", 1.0).max(1.0) as usize,
        }
    }
}

/// What the client saw in one run.
#[derive(Default)]
struct Outcome {
    /// Responses by status, over the whole run (warm-up included).
    statuses: BTreeMap<u16, u64>,
    /// 204s completed in the measured window.
    measured_ok: u64,
    /// Latencies (µs) of the responses completed in the measured window.
    latencies: Vec<u32>,
    /// Connection errors.
    errors: u64,
    /// Length of the measured window.
    window: Duration,
}

impl Outcome {
    fn ok(&self) -> u64 {
        self.statuses.get(&204).copied().unwrap_or(0)
    }
    fn not_ok(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| **s != 204)
            .map(|(_, n)| n)
            .sum()
    }
    fn rps(&self) -> f64 {
        self.measured_ok as f64 / self.window.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies[i]) / 1000.0
    }
}

/// One row of the report.
struct Row {
    mode: String,
    server: &'static str,
    hits_per_request: u64,
    outcome: Outcome,
    /// For tally: (rows stored, drain time, whole-run duration); `None` for bare.
    stored: Option<(u64, Duration, Duration)>,
    /// For tally: its metrics after the run, shown when the check fails.
    metrics: String,
}

/// A server runtime exactly like `tally`'s (`src/main.rs`).
fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("server runtime")
}

/// The ceiling: hyper-util's auto builder, set up like `server::serve`, reading each body and
/// answering 204 with the same headers as an accepted hit.
async fn bare_serve(listener: TcpListener, shutdown: oneshot::Receiver<()>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
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
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {}
    }
}

/// The raw bytes of pooled requests: `count` GETs, or `count` bulk POSTs of `bulk` hits each.
fn request_pool(count: u64, bulk: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let ua = common::USER_AGENTS[(i % 4) as usize];
            let lang = common::LANGUAGES[(i / 4 % 4) as usize];
            let xff = common::client_ip(i);
            if bulk == 0 {
                format!(
                    "GET /matomo.php?{} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {ua}\r\n\
                     Accept-Language: {lang}\r\nX-Forwarded-For: {xff}\r\n\r\n",
                    common::hit_query(i)
                )
                .into_bytes()
            } else {
                // Queries are percent-encoded: nothing in them needs JSON escaping.
                let hits: Vec<String> = (0..bulk as u64)
                    .map(|k| format!("\"?{}\"", common::hit_query(i * bulk as u64 + k)))
                    .collect();
                let body = format!("{{\"requests\":[{}],\"send_image\":0}}", hits.join(","));
                format!(
                    "POST /matomo.php HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {ua}\r\n\
                     Accept-Language: {lang}\r\nX-Forwarded-For: {xff}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            }
        })
        .collect()
}

/// Reads one response from `stream` (leftover bytes stay in `buf`); returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
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

/// Drives `addr` with `opts.conns` connections for warm-up + measured window.
async fn drive(addr: SocketAddr, opts: &Opts, pool: Arc<Vec<Vec<u8>>>) -> Outcome {
    let start = Instant::now();
    let warm_end = start + Duration::from_secs_f64(opts.warmup);
    let end = warm_end + Duration::from_secs_f64(opts.secs);
    let tasks: Vec<_> = (0..opts.conns)
        .map(|c| {
            let pool = pool.clone();
            let depth = opts.pipeline;
            let step = opts.conns;
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
                let mut batch = Vec::new();
                let mut next = c;
                'run: while Instant::now() < end {
                    batch.clear();
                    for _ in 0..depth {
                        batch.extend_from_slice(&pool[next % pool.len()]);
                        next += step;
                    }
                    let sent = Instant::now();
                    if stream.write_all(&batch).await.is_err() {
                        out.errors += 1;
                        break;
                    }
                    for _ in 0..depth {
                        let status = match read_response(&mut stream, &mut buf).await {
                            Ok(s) => s,
                            Err(_) => {
                                out.errors += 1;
                                break 'run;
                            }
                        };
                        let done = Instant::now();
                        *out.statuses.entry(status).or_default() += 1;
                        if done >= warm_end && done <= end {
                            out.latencies
                                .push((done - sent).as_micros().min(u32::MAX as u128) as u32);
                            if status == 204 {
                                out.measured_ok += 1;
                            }
                        }
                    }
                }
                out
            })
        })
        .collect();
    let mut total = Outcome {
        window: Duration::from_secs_f64(opts.secs),
        ..Outcome::default()
    };
    for t in tasks {
        let o = t.await.expect("client task");
        for (s, n) in o.statuses {
            *total.statuses.entry(s).or_default() += n;
        }
        total.measured_ok += o.measured_ok;
        total.latencies.extend(o.latencies);
        total.errors += o.errors;
    }
    total.latencies.sort_unstable();
    total
}

fn run_bare(client: &tokio::runtime::Runtime, opts: &Opts, pool: Arc<Vec<Vec<u8>>>) -> Outcome {
    let rt = server_runtime();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel();
    let server = rt.spawn(bare_serve(listener, stopped));
    let outcome = client.block_on(drive(addr, opts, pool));
    let _ = stop.send(());
    rt.block_on(server).expect("bare server");
    outcome
}

/// Runs tally on database `db`; returns what the client saw and (rows stored, drain time,
/// whole-run time).
fn run_tally(
    client: &tokio::runtime::Runtime,
    opts: &Opts,
    pool: Arc<Vec<Vec<u8>>>,
    ch_url: &str,
    db: &str,
) -> (Outcome, (u64, Duration, Duration), String) {
    let rt = server_runtime();
    let config = common::config(
        ch_url,
        db,
        "[privacy]\ntrusted_proxies = [\"127.0.0.0/8\", \"::1/128\"]\n",
    );
    let (app, writer) = rt.block_on(common::app(config));
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = rt.spawn(tally::server::serve(app.clone(), listener, async {
        let _ = stopped.await;
    }));
    let begun = Instant::now();
    let outcome = client.block_on(drive(addr, opts, pool));
    let load_ended = Instant::now();
    let _ = stop.send(());
    rt.block_on(async {
        server.await.expect("tally server");
        writer.finish().await;
    });
    let drained = Instant::now();
    let stored = rt.block_on(common::count_events(ch_url, db));
    let m = &app.metrics;
    if m.spool_bytes.get() > 4096 {
        eprintln!(
            "warning: {db}: {} bytes left in the spool after the writer finished",
            m.spool_bytes.get()
        );
    }
    (
        outcome,
        (stored, drained - load_ended, drained - begun),
        m.render(),
    )
}

fn main() -> ExitCode {
    let opts = Opts::from_env_and_args();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load harness: {} connections, pipeline depth {}, {} s warm-up + {} s measured per run, \
         bulk {} hits; {} CPUs; loadavg before: {}",
        opts.conns,
        opts.pipeline,
        opts.warmup,
        opts.secs,
        opts.bulk,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let ch = common::clickhouse();
    let ch_url = ch.url().to_string();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    let mut rows = Vec::new();
    let get_pool = Arc::new(request_pool(20_011, 0));
    rows.push(Row {
        mode: "GET".into(),
        server: "bare",
        hits_per_request: 1,
        outcome: run_bare(&client, &opts, get_pool.clone()),
        stored: None,
        metrics: String::new(),
    });
    let (outcome, stored, metrics) = run_tally(&client, &opts, get_pool, &ch_url, "load_get");
    rows.push(Row {
        mode: "GET".into(),
        server: "tally",
        hits_per_request: 1,
        outcome,
        stored: Some(stored),
        metrics,
    });
    if opts.bulk > 0 {
        let pool = Arc::new(request_pool(211, opts.bulk));
        let mode = format!("bulk x{}", opts.bulk);
        rows.push(Row {
            mode: mode.clone(),
            server: "bare",
            hits_per_request: opts.bulk as u64,
            outcome: run_bare(&client, &opts, pool.clone()),
            stored: None,
            metrics: String::new(),
        });
        let (outcome, stored, metrics) = run_tally(&client, &opts, pool, &ch_url, "load_bulk");
        rows.push(Row {
            mode,
            server: "tally",
            hits_per_request: opts.bulk as u64,
            outcome,
            stored: Some(stored),
            metrics,
        });
    }
    drop(ch);
    report(&rows)
}

fn report(rows: &[Row]) -> ExitCode {
    println!();
    println!(
        "{:<10} {:<6} {:>11} {:>11} {:>7} {:>8} {:>8} {:>8} {:>12} {:>8} {:>11}  stored == 204 x hits",
        "mode",
        "server",
        "requests/s",
        "events/s",
        "ratio",
        "p50 ms",
        "p99 ms",
        "non-204",
        "rows stored",
        "drain s",
        "stored/s"
    );
    let mut failed = false;
    let mut bare_eps = 0.0;
    for r in rows {
        let o = &r.outcome;
        let eps = o.rps() * r.hits_per_request as f64;
        let ratio = if r.server == "bare" {
            bare_eps = eps;
            "1.00".to_string()
        } else {
            format!("{:.2}", eps / bare_eps)
        };
        let (stored, drain, sustained, check) = match r.stored {
            None => ("-".into(), "-".into(), "-".into(), String::new()),
            Some((rows, drain, whole)) => {
                let expected = o.ok() * r.hits_per_request;
                let ok = rows == expected && o.ok() > 0;
                failed |= !ok;
                (
                    rows.to_string(),
                    format!("{:.2}", drain.as_secs_f64()),
                    format!("{:.0}", rows as f64 / whole.as_secs_f64()),
                    if ok {
                        format!("yes ({rows} = {} x {})", o.ok(), r.hits_per_request)
                    } else {
                        format!("NO: {rows} rows for {} x {}", o.ok(), r.hits_per_request)
                    },
                )
            }
        };
        println!(
            "{:<10} {:<6} {:>11.0} {:>11.0} {:>7} {:>8.2} {:>8.2} {:>8} {:>12} {:>8} {:>11}  {check}",
            r.mode,
            r.server,
            o.rps(),
            eps,
            ratio,
            o.percentile(0.50),
            o.percentile(0.99),
            o.not_ok(),
            stored,
            drain,
            sustained,
        );
        if r.stored.is_some() && check.starts_with("NO") {
            println!("           tally's metrics:\n{}", r.metrics);
        }
        if o.not_ok() > 0 || o.errors > 0 {
            println!(
                "           statuses {:?}, connection errors {}",
                o.statuses, o.errors
            );
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\nratio: events/s of tally over bare hyper in the same mode. loadavg after: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if failed {
        eprintln!("FAILED: rows stored in ClickHouse differ from the events answered with 204");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
