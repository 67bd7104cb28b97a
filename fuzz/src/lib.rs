//! What tally's fuzz targets share: one collector state built as `tally serve` builds it (but
//! with no ClickHouse behind its queue), the request context of a tracking request, the path
//! one hit's parameters take through `ingest::hit` and the pipeline, and the properties every
//! stored event must have whatever was sent.
//!
//! The targets never enqueue: the writer is never driven, so a queue that fills would only
//! turn later inputs into `queue_full` refusals and hide the code behind them.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use tally::config::Config;
use tally::enrich::ClientHints;
use tally::enrich::visitor::VisitorKeys;
use tally::event::Event;
use tally::ingest::hit::{self, RequestContext};
use tally::ingest::params::Params;
use tally::ingest::reject::Reject;
use tally::metrics::Metrics;
use tally::pipeline;
use tally::privacy::{self, FullIp};
use tally::sink::{self, Writer};
use tally::state::App;

/// The configured `token_auth`: in the seed corpora and the dictionaries, so that the fuzzer
/// also reaches the privileged parameters (`cip`, `cdt`, `country`, ...).
pub const TOKEN: &str = "fuzz-token-0123456789abcdef";

/// The arrival time of every fuzzed hit (2025-06-15 15:06:40 UTC): fixed, so that a crash
/// found on one day reproduces on any other.
pub const NOW: u32 = 1_750_000_000;

/// Two sites, as an operator configures them: one keeping server-side senders, one only
/// browsers; the defaults of `[privacy]` otherwise (DNT/GPC respected, 2 address bytes
/// removed, Matomo's opt-out cookies honoured). No geo database, no request at start.
const CONFIG: &str = r#"
token_auth = "fuzz-token-0123456789abcdef"

[clickhouse]
# Never connected to: nothing is enqueued and the writer never runs.
url = "http://127.0.0.1:9"

[geo]
auto = false

[privacy]
trusted_proxies = ["10.0.0.0/8"]
exclude_ips = ["192.0.2.0/24"]

[[sites]]
id = 1
name = "Example"
domains = ["example.org", "*.example.org"]

[[sites]]
id = 2
name = "Shop"
domains = ["shop.example.net"]
track_non_browsers = false
sensitive_params = ["session"]
"#;

struct Fixture {
    app: App,
    // Kept so that the sink's channel stays open; never driven.
    _writer: Writer,
    _rt: tokio::runtime::Runtime,
}

/// The collector state every target uses, built once per process.
pub fn app() -> &'static App {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    &FIXTURE
        .get_or_init(|| {
            let mut table: toml::Table = CONFIG.parse().expect("fuzz config is TOML");
            // A spool of this process's own (one process per spool directory), never written.
            let spool =
                std::env::temp_dir().join(format!("tally-fuzz-spool-{}", std::process::id()));
            let mut spool_table = toml::Table::new();
            spool_table.insert(
                "dir".into(),
                toml::Value::String(spool.display().to_string()),
            );
            table.insert("spool".into(), toml::Value::Table(spool_table));
            let config = Config::from_table(table).expect("fuzz config is valid");
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a tokio runtime");
            // `sink::start` spawns the writer task; on a runtime that is never driven it never
            // runs, so no connection is ever attempted.
            let _entered = rt.enter();
            let url = config
                .clickhouse
                .url
                .clone()
                .expect("fuzz config has a url");
            let client = tally::store::client(&url, &config.clickhouse);
            let metrics = Arc::new(Metrics::new());
            let visitors = Arc::new(VisitorKeys::for_sites(&config.sites));
            let status = Arc::new(tally::status::WriteStatus::default());
            let (sink, writer) =
                sink::start(client, &config, metrics.clone(), status).expect("open the fuzz spool");
            let app = App::new(config, metrics, sink, visitors).expect("build the app");
            drop(_entered);
            Fixture {
                app,
                _writer: writer,
                _rt: rt,
            }
        })
        .app
}

/// A browser's user agent, for hits whose input carries none.
pub const BROWSER_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// The context of a tracking request from a browser at 203.0.113.7, as `ingest::track` builds
/// it from the socket and the headers (arrival: truncation, no full-address lookup).
pub fn context<'a>(app: &App, user_agent: &'a str, hints: ClientHints<'a>) -> RequestContext<'a> {
    let peer = FullIp::of_peer(IpAddr::from([203, 0, 113, 7]));
    let ip = privacy::anonymize(&peer, &app.config.privacy).expect("peer is not excluded");
    RequestContext {
        ip,
        user_agent,
        accept_language: "de-DE,de;q=0.9,en;q=0.8",
        referer: "https://www.example.org/from-the-referer-header",
        now: NOW,
        authenticated: false,
        hints,
        model_header: None,
        location: None,
    }
}

/// One hit's parameters through `hit::build` and `pipeline::run`, as `ingest::track` takes a
/// single hit or a bulk entry (without the enqueue), and the stored event checked.
pub fn track(app: &App, params: &Params<'_>, ctx: &RequestContext<'_>) -> Result<(), Reject> {
    if let Some((event, hit)) = hit::build(params, ctx, app)?
        && let Some(event) = pipeline::run(event, &hit, app)?
    {
        check_event(app, &event);
    }
    Ok(())
}

/// What every event tally would store holds, whatever the request said.
pub fn check_event(app: &App, event: &Event) {
    // Privacy by construction: the stored address is always the truncated one (2 bytes of an
    // IPv4 address removed, an IPv6 address cut to /48), also with `cip` and a valid token.
    let ip: IpAddr = event
        .ip
        .parse()
        .unwrap_or_else(|_| panic!("stored address {:?} is an address", event.ip));
    match ip {
        IpAddr::V4(v4) => assert_eq!(
            u32::from(v4) & 0xffff,
            0,
            "stored IPv4 address {v4} is truncated"
        ),
        IpAddr::V6(v6) => assert_eq!(
            u128::from(v6) & ((1u128 << 80) - 1),
            0,
            "stored IPv6 address {v6} is truncated"
        ),
    }
    // Only configured sites are written to, and no hit is older than the raw-data window or in
    // the future.
    assert!(
        app.config.site(event.site_id).is_some(),
        "site {}",
        event.site_id
    );
    assert!(event.ts <= NOW, "ts {} after arrival", event.ts);
    assert!(
        NOW - event.ts <= app.config.retention.raw_days * 86_400 + 86_400,
        "ts {} older than the raw-data window",
        event.ts
    );
    // Custom dimensions come in pairs.
    assert_eq!(event.dimension_ids.len(), event.dimension_values.len());
}

/// The fields of a newline-separated input: the first `n - 1` lines, and the rest as the
/// last field (empty fields for lines not there). Seed files stay readable text this way.
pub fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    while out.len() + 1 < n {
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + 1..];
            }
            None => {
                out.push(rest);
                rest = &rest[rest.len()..];
            }
        }
    }
    out.push(rest);
    out
}

/// A header value as hyper's parser would have let it through: `None` for bytes no header
/// can carry (control characters other than tab, line breaks).
pub fn header_value(raw: &[u8]) -> Option<hyper::header::HeaderValue> {
    hyper::header::HeaderValue::from_bytes(raw).ok()
}

/// A header value as the request path reads it (`to_str`: visible ASCII only).
pub fn header_text(raw: &[u8]) -> Option<&str> {
    header_value(raw)?;
    std::str::from_utf8(raw)
        .ok()
        .filter(|s| s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
}
