//! The per-event ingest path, step by step and as a whole, without network in the timed loop.
//!
//! `cargo bench --bench ingest` (figures and how to read them: `docs/performance.md`).
//!
//! One throw-away ClickHouse is started for the whole run and a real [`App`] is built on it as
//! `tally serve` builds it: the configured sink with its batch writer running on a 2-worker
//! tokio runtime (like `tally`'s own), a fresh visitor secret, site 1 on `example.org`, and
//! `10.0.0.0/8` as trusted proxies. The `events` table of the bench database is swapped for one
//! with `ENGINE = Null` (same columns): the writer does all of its real work (batching,
//! RowBinary, LZ4, HTTP insert, ClickHouse parsing the block) but nothing is kept, so that the
//! tens of millions of events a criterion run enqueues neither fill the disk nor make the run
//! wait for MergeTree. `benches/load.rs` is the end-to-end check that stores every row.
//!
//! The hit is a realistic `matomo.js` page view (`common::hit_query`: ~450 bytes with url,
//! action_name, urlref, res, h/m/s, _id, _idvc, _viewts, pv_id, plugin flags and timings).
//!
//! | bench | what is timed |
//! | --- | --- |
//! | `params/extend` | `Params::extend` of the query string into a fresh `Params`, and its drop |
//! | `privacy/arrive_direct` | `privacy::arrive`: socket peer, no trusted proxy, truncation |
//! | `privacy/arrive_trusted_xff` | `privacy::arrive`: trusted peer, `X-Forwarded-For` walked from the right |
//! | `hit/build` | `ingest::hit::build` of the parsed params into `Event` + `Hit`, and their drop |
//! | `pipeline/run` | `pipeline::run` with every step in `STEPS` at build time (event clone not timed) |
//! | `pipeline/step/NAME` | each step of `STEPS` alone (event clone not timed) |
//! | `sink/enqueue` | `Sink::enqueue` of one event (a one-element `Vec`), back to back, while the writer drains |
//! | `track/get` | `ingest::track::handle` for one GET hit: refusal check, arrival with XFF, params, build, pipeline, enqueue, 204 response; only the HTTP parsing and the socket are missing |
//! | `track/bulk100` | `ingest::track::handle` for a bulk POST of 100 hits (JSON body in memory); throughput per event |
//!
//! The enqueuing benches (`sink/*`, `track/*`) run their timed loops on a runtime worker (where
//! the server calls `track::handle`) and time chunks of `CHUNK` (1024) events with
//! `iter_custom`; their inputs (cloned events, built `Request`s) are made untimed just before
//! each chunk. The writer drains concurrently, as under load; when the queue gets near full the
//! bench waits for it, untimed, so the queue never refuses.

mod common;

use std::future::Future;
use std::hint::black_box;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use http_body_util::Full;
use hyper::header::{ACCEPT_LANGUAGE, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{HeaderMap, Method, Request, StatusCode};

use tally::config::PrivacyConfig;
use tally::event::Event;
use tally::ingest::hit::{self, RequestContext};
use tally::ingest::params::Params;
use tally::ingest::track;
use tally::pipeline::{self, STEPS};
use tally::privacy::{self, FullIp};
use tally::state::App;
use tally::store::embedded::EmbeddedClickHouse;

/// Enqueues timed in one go (inputs made just before, so they are still in cache as a hit's
/// event is).
const CHUNK: u64 = 1024;

struct Fixture {
    rt: tokio::runtime::Runtime,
    app: Arc<App>,
    _ch: EmbeddedClickHouse,
}

fn fixture() -> &'static Fixture {
    static FX: OnceLock<Fixture> = OnceLock::new();
    FX.get_or_init(|| {
        let ch = common::clickhouse();
        let url = ch.url().to_string();
        let db = "bench_ingest";
        // A real city database, as the issue's target asks ("with a city database and a warm
        // user-agent cache"); tests/fixtures/fetch-geo.sh downloads it.
        let city = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/geo/GeoIP2-City-Test.mmdb");
        assert!(
            std::path::Path::new(city).is_file(),
            "missing {city}: run tests/fixtures/fetch-geo.sh first"
        );
        let config = common::config(
            &url,
            db,
            &format!(
                r#"
[privacy]
trusted_proxies = ["10.0.0.0/8"]

[geo]
database = "{city}"
# Full-address lookups of addresses the test database knows (see `common::client_ip`), so that
# every hit decodes a whole city record: the worst case. With the default truncated lookup
# the small test database finds nothing, which would flatter the figure.
use_full_ip = true

[sink]
batch_size = 100000
flush_ms = 200

[spool]
dir = "{spool}"
max_bytes = 8589934592
"#,
                spool = common::spool_dir().display()
            ),
        );
        // The same runtime as `tally` (multi-thread, one worker per core).
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let app = rt.block_on(async {
            let (app, writer) = common::app(config).await;
            common::execute(
                &url,
                &format!("CREATE TABLE {db}.events_null AS {db}.events ENGINE = Null"),
            )
            .await;
            common::execute(
                &url,
                &format!(
                    "RENAME TABLE {db}.events TO {db}.events_stored, {db}.events_null TO {db}.events"
                ),
            )
            .await;
            // The writer lives as long as the process; it is never finished.
            std::mem::forget(writer);
            app
        });
        Fixture { rt, app, _ch: ch }
    })
}

/// Waits (untimed) until the spool has room for another chunk.
fn wait_for_room(app: &App) {
    let start = Instant::now();
    while !app.sink.has_room(2 * CHUNK as usize) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the sink writer did not drain the spool"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `f` on a worker of the runtime, as the server's request handling runs: the writer
/// task it wakes is scheduled there like in `tally serve`, not from a foreign thread.
fn on_worker<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    rt.block_on(rt.spawn(async move { f() }))
        .expect("bench task")
}

/// Runs a future that never waits (the GET path, and POST with an in-memory body) to its end.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the ingest path waited on something"),
    }
}

fn trusted_peer() -> FullIp {
    FullIp::of_peer(IpAddr::from([10, 0, 0, 1]))
}

fn headers(i: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        USER_AGENT,
        HeaderValue::from_static(common::USER_AGENTS[(i % 4) as usize]),
    );
    h.insert(
        ACCEPT_LANGUAGE,
        HeaderValue::from_static(common::LANGUAGES[(i % 4) as usize]),
    );
    h.insert(
        "x-forwarded-for",
        HeaderValue::from_str(&format!("{}, 10.0.0.7", common::client_ip(i))).unwrap(),
    );
    h
}

fn get_request(i: u64) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(format!("/matomo.php?{}", common::hit_query(i)))
        .body(Full::new(Bytes::new()))
        .unwrap();
    *req.headers_mut() = headers(i);
    req
}

fn bulk_request(i: u64, hits: u64) -> Request<Full<Bytes>> {
    let requests: Vec<String> = (0..hits)
        .map(|k| format!("?{}", common::hit_query(i * hits + k)))
        .collect();
    let body = serde_json::json!({ "requests": requests }).to_string();
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/matomo.php")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    *req.headers_mut() = headers(i);
    req.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    req
}

fn steps(c: &mut Criterion) {
    let fx = fixture();
    let app = &*fx.app;
    let _rt = fx.rt.enter();
    let query = common::hit_query(1);
    let limits = &app.config.limits;

    c.bench_function("params/extend", |b| {
        b.iter(|| {
            let mut p = Params::default();
            p.extend(black_box(query.as_bytes()), limits);
            black_box(&p);
        })
    });

    let direct = PrivacyConfig::default();
    let trusted = &app.config.privacy;
    let mut no_headers = headers(1);
    no_headers.remove("x-forwarded-for");
    let with_xff = headers(1);
    let public_peer = IpAddr::from([203, 0, 113, 77]);
    c.bench_function("privacy/arrive_direct", |b| {
        b.iter(|| {
            privacy::arrive(
                FullIp::of_peer(black_box(public_peer)),
                &no_headers,
                &direct,
            )
            .is_ok()
        })
    });
    c.bench_function("privacy/arrive_trusted_xff", |b| {
        b.iter(|| privacy::arrive(black_box(trusted_peer()), &with_xff, trusted).is_ok())
    });

    let mut params = Params::default();
    params.extend(query.as_bytes(), limits);
    let Ok((ip, _)) = privacy::arrive(trusted_peer(), &with_xff, trusted) else {
        panic!("arrival refused")
    };
    let ctx = RequestContext {
        ip,
        user_agent: common::USER_AGENTS[1],
        accept_language: common::LANGUAGES[1],
        referer: "",
        model_header: None,
        now: tally::time::now_unix(),
        authenticated: false,
        hints: Default::default(),
        location: None,
    };
    c.bench_function("hit/build", |b| {
        b.iter(|| black_box(hit::build(black_box(&params), &ctx, app).unwrap()))
    });

    let (event, hit) = hit::build(&params, &ctx, app).unwrap().unwrap();
    c.bench_function("pipeline/run", |b| {
        b.iter_batched(
            || event.clone(),
            |e| pipeline::run(e, &hit, app).unwrap().expect("not dropped"),
            BatchSize::SmallInput,
        )
    });
    for (name, step) in STEPS {
        c.bench_function(&format!("pipeline/step/{name}"), |b| {
            b.iter_batched(
                || event.clone(),
                |mut e| {
                    let stopped = step(&mut e, &hit, app).is_err();
                    (e, stopped)
                },
                BatchSize::SmallInput,
            )
        });
    }
}

fn enqueue(c: &mut Criterion) {
    let fx = fixture();
    let app = &*fx.app;
    let _rt = fx.rt.enter();

    let query = common::hit_query(1);
    let mut params = Params::default();
    params.extend(query.as_bytes(), &app.config.limits);
    let Ok((ip, _)) = privacy::arrive(trusted_peer(), &headers(1), &app.config.privacy) else {
        panic!("arrival refused")
    };
    let ctx = RequestContext {
        ip,
        user_agent: common::USER_AGENTS[1],
        accept_language: common::LANGUAGES[1],
        referer: "",
        model_header: None,
        now: tally::time::now_unix(),
        authenticated: false,
        hints: Default::default(),
        location: None,
    };
    let (event, hit) = hit::build(&params, &ctx, app).unwrap().unwrap();
    let event: Event = pipeline::run(event, &hit, app).unwrap().unwrap();

    let mut g = c.benchmark_group("sink");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    g.bench_function("enqueue", |b| {
        b.iter_custom(|iters| {
            timed_chunks(app, iters, 1, |n| {
                let input: Vec<Vec<Event>> = (0..n).map(|_| vec![event.clone()]).collect();
                let app = fx.app.clone();
                on_worker(&fx.rt, move || {
                    let start = Instant::now();
                    for events in input {
                        app.sink.enqueue(events).expect("the queue has room");
                    }
                    start.elapsed()
                })
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("track");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    let seq = std::cell::Cell::new(0u64);
    g.bench_function("get", |b| {
        b.iter_custom(|iters| {
            timed_chunks(app, iters, 1, |n| {
                let first = seq.get();
                seq.set(first + n);
                let input: Vec<_> = (first..first + n).map(get_request).collect();
                let app = fx.app.clone();
                on_worker(&fx.rt, move || {
                    let start = Instant::now();
                    for req in input {
                        let resp = ready(track::handle(&app, req, trusted_peer()));
                        debug_assert_eq!(resp.status(), StatusCode::NO_CONTENT);
                        black_box(resp);
                    }
                    start.elapsed()
                })
            })
        })
    });
    const BULK: u64 = 100;
    g.throughput(Throughput::Elements(BULK));
    g.bench_function("bulk100", |b| {
        b.iter_custom(|iters| {
            timed_chunks(app, iters, BULK, |n| {
                let first = seq.get();
                seq.set(first + n);
                let input: Vec<_> = (first..first + n).map(|i| bulk_request(i, BULK)).collect();
                let app = fx.app.clone();
                on_worker(&fx.rt, move || {
                    let start = Instant::now();
                    for req in input {
                        let resp = ready(track::handle(&app, req, trusted_peer()));
                        debug_assert_eq!(resp.status(), StatusCode::OK); // Matomo's JSON summary
                        black_box(resp);
                    }
                    start.elapsed()
                })
            })
        })
    });
    g.finish();
    let rejected = app.metrics.render();
    assert!(
        !rejected.contains("requests_rejected_total{"),
        "the benchmarked requests must all be accepted:\n{rejected}"
    );
}

/// Splits `iters` iterations of `events_each` events into chunks, waiting for room in the queue
/// before each; `run(n)` times `n` iterations and returns their time.
fn timed_chunks(
    app: &App,
    iters: u64,
    events_each: u64,
    mut run: impl FnMut(u64) -> Duration,
) -> Duration {
    let per_chunk = (CHUNK / events_each).max(1);
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(per_chunk);
        wait_for_room(app);
        total += run(n);
        left -= n;
    }
    total
}

/// The instructions of whole hits, for `valgrind --tool=callgrind`, which counts the same on a
/// busy machine as on an idle one (criterion's times do not). With `INGEST_CALLGRIND=N` the
/// bench skips criterion, warms the caches with 1,000 hits and runs `N` GET hits through
/// [`measured_hits`] on this thread; the collection is limited to that function:
///
/// ```sh
/// INGEST_CALLGRIND=2000 valgrind --tool=callgrind --toggle-collect='*measured_hits*' \
///     target/release/deps/ingest-<hash> --bench
/// ```
///
/// Instructions per hit = the reported total / N (`docs/performance.md`).
fn callgrind(n: u64) {
    let fx = fixture();
    let warm: Vec<_> = (0..1000).map(get_request).collect();
    let reqs: Vec<_> = (1000..1000 + n).map(get_request).collect();
    let _rt = fx.rt.enter();
    measured_hits(&fx.app, warm);
    wait_for_room(&fx.app);
    let answered = measured_hits(&fx.app, reqs);
    assert_eq!(answered, n, "every hit must be answered 204");
}

/// Hits through `track::handle`, as the server runs them; returns how many got a 204.
#[inline(never)]
fn measured_hits(app: &App, reqs: Vec<Request<Full<Bytes>>>) -> u64 {
    let mut ok = 0;
    for req in reqs {
        let resp = ready(track::handle(app, req, trusted_peer()));
        ok += u64::from(resp.status() == StatusCode::NO_CONTENT);
        black_box(resp);
    }
    ok
}

criterion_group!(benches, steps, enqueue);

fn main() {
    if let Some(n) = std::env::var("INGEST_CALLGRIND")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        callgrind(n);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
