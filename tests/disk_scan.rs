//! The promise "IP addresses are never stored in full", checked on disk: hits from known client
//! addresses arrive through every door an address can take (the socket's peer, `X-Forwarded-For`
//! and `Forwarded` from a trusted proxy, IPv6, IPv4-mapped IPv6, `cip` with `token_auth` by GET
//! and POST, the bulk endpoint with query strings and with the log importer's JSON objects), are
//! rolled up into visits and aggregates, merged (`OPTIMIZE .. FINAL`), and the ClickHouse server
//! is stopped cleanly. Then none of those addresses may be found
//!
//! - in anything the server returns for `SELECT *` of every table of the database and of its
//!   `system.query_log` (as TSV and as RowBinary), nor
//! - in any file of the server's directory (table data, written uncompressed for this test so that
//!   what a table holds is in its files byte for byte; `system.query_log` with every query logged;
//!   the server's own log at trace level; metadata, temporary files) or of the collector's (its
//!   configuration, its stdout and stderr at debug level),
//!
//! as text (dotted, canonical and expanded IPv6, upper case, `%3A`-encoded, the IPv4 as a decimal
//! and as a hex number) or in binary (4 bytes in both byte orders, which includes the UInt32 that
//! ClickHouse's `IPv4StringToNum` would store; 16 bytes in both orders, for IPv6 and for the
//! IPv4-mapped form of an IPv4 address).
//!
//! So that the test cannot pass by looking in the wrong place, a canary address is planted
//! through SQL just before the server stops, and must be found: in a table's data files (a
//! thousand times in one of them, which shows the data is not compressed), in the query log
//! and in the server's log.
//!
//! The addresses are chosen with high bytes, so that their 4-byte forms are unlikely to occur by
//! chance in the few megabytes scanned.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Collector, SITE, http, query_on};
use serde_json::json;
use tally::store::embedded::{EmbeddedClickHouse, LogLevel, ServerOptions};

const TOKEN: &str = "scan-token-0123456789";

/// The socket address the peer door's requests come from (any 127/8 address is loopback).
const PEER: &str = "127.229.183.211";

/// Each client address and the door it comes through.
const DOORS: &[(&str, &str)] = &[
    (PEER, "socket peer"),
    ("185.217.163.201", "X-Forwarded-For"),
    ("193.197.143.229", "Forwarded"),
    (
        "2a02:8109:b6c3:9d00:a5f1:e3b7:c9d4:f1e7",
        "X-Forwarded-For, IPv6",
    ),
    (
        "::ffff:188.233.155.203",
        "X-Forwarded-For, IPv4-mapped IPv6",
    ),
    ("212.185.233.167", "cip with token_auth, GET"),
    ("166.217.199.173", "cip with token_auth, POST form"),
    (
        "2a01:c23:b8d5:e900:91ab:d7c3:e5f9:a7b1",
        "cip with token_auth, IPv6",
    ),
    ("217.229.171.149", "bulk, the log importer's JSON objects"),
    ("178.219.137.241", "bulk, query strings"),
    ("176.198.211.157", "Plausible's /api/event, X-Forwarded-For"),
];

/// Hits per door.
const HITS: usize = 4;

/// Planted on purpose; must be found.
const CANARY_V4: &str = "201.173.197.211";
const CANARY_V6: &str = "2a03:b0c0:d7e5:f9a1:c3b5:e7d9:a1f3:b5c7";

/// Rows of the canary's table: enough that compressed data could not hold them all verbatim.
const CANARY_ROWS: usize = 1000;

/// Every form in which `addr` could be kept, named.
fn forms(addr: &str) -> Vec<(String, Vec<u8>)> {
    let ip: IpAddr = addr.parse().unwrap();
    let text = |name: &str, s: String| (format!("{name} {s:?}"), s.into_bytes());
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
            let v4 = v6.to_ipv4_mapped().unwrap();
            out.extend(forms(&v4.to_string()));
            return out;
        }
        IpAddr::V4(v4) => {
            let n = u32::from(v4);
            out.push(text("text", v4.to_string()));
            out.push(text("decimal", n.to_string()));
            out.push(text("hex", format!("{n:08x}")));
            out.push(text("HEX", format!("{n:08X}")));
            out.push(("4 bytes, network order".into(), v4.octets().to_vec()));
            out.push((
                "4 bytes, little-endian (ClickHouse UInt32/IPv4)".into(),
                n.to_le_bytes().to_vec(),
            ));
            let mapped = v4.to_ipv6_mapped().octets();
            out.push(("16 bytes, IPv4-mapped".into(), mapped.to_vec()));
            let mut rev = mapped;
            rev.reverse();
            out.push(("16 bytes, IPv4-mapped, reversed".into(), rev.to_vec()));
        }
        IpAddr::V6(v6) => {
            let canonical = v6.to_string();
            let expanded = v6
                .segments()
                .iter()
                .map(|g| format!("{g:04x}"))
                .collect::<Vec<_>>()
                .join(":");
            out.push(text("text", canonical.clone()));
            out.push(text("TEXT", canonical.to_uppercase()));
            out.push(text("expanded", expanded));
            out.push(text("%3A", canonical.replace(':', "%3A")));
            out.push(text("%3a", canonical.replace(':', "%3a")));
            out.push(text("hex", hex(&v6.octets())));
            out.push(("16 bytes, network order".into(), v6.octets().to_vec()));
            let mut rev = v6.octets();
            rev.reverse();
            out.push(("16 bytes, reversed (UInt128)".into(), rev.to_vec()));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The patterns to look for: (address, form name, bytes).
fn patterns(addresses: &[&str]) -> Vec<(String, String, Vec<u8>)> {
    addresses
        .iter()
        .flat_map(|a| {
            forms(a)
                .into_iter()
                .map(move |(name, bytes)| (a.to_string(), name, bytes))
        })
        .collect()
}

/// Where each pattern occurs in `haystack`: (pattern index, occurrences).
fn find_all(matcher: &aho_corasick::AhoCorasick, haystack: &[u8]) -> BTreeMap<usize, usize> {
    let mut found = BTreeMap::new();
    for m in matcher.find_overlapping_iter(haystack) {
        *found.entry(m.pattern().as_usize()).or_default() += 1;
    }
    found
}

/// Every regular file under `dir`, with its contents.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let bytes = std::fs::read(e.path())
                .unwrap_or_else(|err| panic!("cannot read {}: {err}", e.path().display()));
            (e.path().to_path_buf(), bytes)
        })
        .collect()
}

/// `GET /matomo.php` with `params` and `headers`, from `client`.
async fn hit(
    client: &reqwest::Client,
    c: &Collector,
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
) {
    let mut req = client.get(c.url("/matomo.php")).query(params);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 204, "{params:?} {headers:?}");
}

/// Runs `sql` on `url`, returning the raw answer.
async fn raw_query(url: &str, sql: &str) -> Vec<u8> {
    let r = reqwest::Client::new()
        .post(url)
        .body(sql.to_string())
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.bytes().await.unwrap().to_vec();
    assert!(
        status.is_success(),
        "{sql}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

#[tokio::test]
async fn no_full_client_address_is_anywhere_on_disk() {
    let scratch = tempfile::Builder::new()
        .prefix("tally-disk-scan-")
        .tempdir()
        .unwrap();
    let ch = EmbeddedClickHouse::start_with(
        scratch.path(),
        false,
        &ServerOptions {
            log_queries: true,
            uncompressed: true,
            log_level: LogLevel::Trace,
            ..ServerOptions::default()
        },
    )
    .expect("start a test ClickHouse");
    let url = ch.url().to_string();
    let db = "scan";
    let mut c = Collector::start_raw_on_server(
        &url,
        db,
        &format!(
            "token_auth = \"{TOKEN}\"\n[privacy]\ntrusted_proxies = [\"127.0.0.1/32\"]\n\
             [rollup]\ninterval_secs = 0\n{SITE}"
        ),
    );

    // Every door, HITS times, each hit on its own page.
    let peer = reqwest::Client::builder()
        .user_agent(common::BROWSER_UA)
        .local_address(PEER.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let proxy = http();
    let mut sent = 0;
    for i in 0..HITS {
        let page = format!("https://example.org/scan/{i}");
        let base = |title: &'static str| {
            vec![
                ("idsite", "1"),
                ("rec", "1"),
                ("action_name", title),
                ("send_image", "0"),
            ]
        };
        let mut p = base("peer");
        p.push(("url", &page));
        hit(&peer, &c, &p, &[]).await;
        let mut p = base("xff");
        p.push(("url", &page));
        hit(&proxy, &c, &p, &[("X-Forwarded-For", DOORS[1].0)]).await;
        let forwarded = format!("for={}", DOORS[2].0);
        let mut p = base("forwarded");
        p.push(("url", &page));
        hit(&proxy, &c, &p, &[("Forwarded", &forwarded)]).await;
        let mut p = base("xff-v6");
        p.push(("url", &page));
        hit(&proxy, &c, &p, &[("X-Forwarded-For", DOORS[3].0)]).await;
        let mut p = base("xff-mapped");
        p.push(("url", &page));
        hit(&proxy, &c, &p, &[("X-Forwarded-For", DOORS[4].0)]).await;
        let mut p = base("cip-get");
        p.extend([
            ("url", page.as_str()),
            ("cip", DOORS[5].0),
            ("token_auth", TOKEN),
        ]);
        hit(&proxy, &c, &p, &[]).await;
        let form = [
            ("idsite", "1"),
            ("rec", "1"),
            ("action_name", "cip-post"),
            ("url", page.as_str()),
            ("cip", DOORS[6].0),
            ("token_auth", TOKEN),
            ("send_image", "0"),
        ];
        let r = proxy
            .post(c.url("/matomo.php"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let mut p = base("cip-v6");
        p.extend([
            ("url", page.as_str()),
            ("cip", DOORS[7].0),
            ("token_auth", TOKEN),
        ]);
        hit(&proxy, &c, &p, &[]).await;
        // The log importer: JSON objects to /piwik.php?queuedtracking=0.
        let importer = json!({
            "token_auth": TOKEN,
            "requests": [{
                "idsite": "1", "rec": "1", "apiv": "1", "url": page, "action_name": "importer",
                "cip": DOORS[8].0, "ua": common::BROWSER_UA, "queuedtracking": "0",
            }],
        });
        let r = proxy
            .post(c.url("/piwik.php?queuedtracking=0"))
            .header("content-type", "application/json")
            .body(importer.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let bulk = json!({
            "token_auth": TOKEN,
            "requests": [format!(
                "?idsite=1&rec=1&action_name=bulk&url={}&cip={}",
                page.replace(':', "%3A").replace('/', "%2F"),
                DOORS[9].0
            )],
        });
        let r = proxy
            .post(c.url("/matomo.php"))
            .body(bulk.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Plausible's Events API, as its script sends it (JSON as text/plain).
        let event = json!({"n": "pageview", "u": page, "d": "example.org", "r": null});
        let r = proxy
            .post(c.url("/api/event"))
            .header("content-type", "text/plain")
            .header("X-Forwarded-For", DOORS[10].0)
            .body(event.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        sent += DOORS.len();
    }
    let started = Instant::now();
    let stored = loop {
        let n: usize =
            String::from_utf8(raw_query(&url, &format!("SELECT count() FROM {db}.events")).await)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
        if n >= sent || started.elapsed() > Duration::from_secs(20) {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stored, sent, "every hit stored");
    // Visits and aggregates too.
    c.run_tally(&["rollup"], "").expect("tally rollup");
    assert!(c.stop(), "the collector stops cleanly");
    let visits = query_on(&url, &format!("SELECT count() FROM {db}.visits")).await;
    assert_ne!(visits, "0");

    // Each door delivered: its truncated address is stored (one distinct title per door; the
    // Plausible door's is empty).
    let stored = query_on(
        &url,
        &format!("SELECT title, any(ip), count() FROM {db}.events GROUP BY title ORDER BY title"),
    )
    .await;
    assert_eq!(
        stored,
        [
            // Plausible's events carry no title.
            "\t176.198.0.0",
            "bulk\t178.219.0.0",
            "cip-get\t212.185.0.0",
            "cip-post\t166.217.0.0",
            "cip-v6\t2a01:c23:b8d5::",
            "forwarded\t193.197.0.0",
            "importer\t217.229.0.0",
            "peer\t127.229.0.0",
            "xff\t185.217.0.0",
            "xff-mapped\t188.233.0.0",
            "xff-v6\t2a02:8109:b6c3::",
        ]
        .map(|l| format!("{l}\t{HITS}"))
        .join("\n")
    );

    // tally writes rows as RowBinary: the data is not in the text of its INSERTs.
    query_on(&url, "SYSTEM FLUSH LOGS").await;
    let inserts = query_on(
        &url,
        "SELECT countIf(position(query, 'FORMAT RowBinary') > 0), count() FROM system.query_log \
         WHERE type = 2 AND match(query, '^INSERT INTO [`]?events[`]?[ (]')",
    )
    .await;
    let (rowbinary, all) = inserts.split_once('\t').unwrap();
    assert!(rowbinary != "0" && rowbinary == all, "{inserts}");

    // Merge what can be merged, so merged parts are on disk too.
    let tables = query_on(
        &url,
        &format!(
            "SELECT name FROM system.tables WHERE database = '{db}' AND engine LIKE '%MergeTree'"
        ),
    )
    .await;
    let tables: Vec<&str> = tables.lines().collect();
    assert!(tables.len() >= 10, "{tables:?}");
    for t in &tables {
        query_on(&url, &format!("OPTIMIZE TABLE {db}.{t} FINAL")).await;
    }

    let addresses: Vec<&str> = DOORS.iter().map(|(a, _)| *a).collect();
    let known = patterns(&addresses);
    let matcher = aho_corasick::AhoCorasick::new(known.iter().map(|(_, _, b)| b)).unwrap();
    let mut leaks: Vec<String> = Vec::new();

    // What the server returns for every table, and for its query log.
    let mut sources: Vec<String> = tables.iter().map(|t| format!("{db}.{t}")).collect();
    sources.push("system.query_log".into());
    for source in &sources {
        for format in ["TSV", "RowBinary"] {
            let body = raw_query(&url, &format!("SELECT * FROM {source} FORMAT {format}")).await;
            for (i, n) in find_all(&matcher, &body) {
                leaks.push(format!(
                    "SELECT * FROM {source} FORMAT {format}: {} ({}) {n} times",
                    known[i].0, known[i].1
                ));
            }
        }
    }
    let events = raw_query(&url, &format!("SELECT * FROM {db}.events FORMAT TSV")).await;
    assert!(
        String::from_utf8_lossy(&events).contains("2a02:8109:b6c3::"),
        "the read-back sees the addresses as stored"
    );

    // The canary: a full address planted through SQL (so in the query log too), a thousand times
    // as text, and once as UInt32 and in 16-byte forms.
    let canary: Ipv4Addr = CANARY_V4.parse().unwrap();
    let canary6: Ipv6Addr = CANARY_V6.parse().unwrap();
    query_on(&url, "CREATE DATABASE IF NOT EXISTS canary").await;
    query_on(
        &url,
        "CREATE TABLE canary.planted (s String, n UInt32, mapped FixedString(16), v6 FixedString(16)) \
         ENGINE = MergeTree ORDER BY tuple()",
    )
    .await;
    query_on(
        &url,
        &format!(
            "INSERT INTO canary.planted SELECT '{CANARY_V4}', {}, unhex('{}'), unhex('{}') FROM system.numbers LIMIT {CANARY_ROWS}",
            u32::from(canary),
            hex(&canary.to_ipv6_mapped().octets()),
            hex(&canary6.octets()),
        ),
    )
    .await;
    query_on(
        &url,
        &format!("SELECT count() FROM canary.planted WHERE s = '{CANARY_V6}'"),
    )
    .await;
    query_on(&url, "SYSTEM FLUSH LOGS").await;

    // Stop the server cleanly: its data and logs are on disk.
    let ch_dir = ch.dir().to_path_buf();
    ch.stop();

    let canaries = patterns(&[CANARY_V4, CANARY_V6]);
    let all: Vec<&Vec<u8>> = known
        .iter()
        .chain(canaries.iter())
        .map(|(_, _, b)| b)
        .collect();
    let matcher = aho_corasick::AhoCorasick::new(all).unwrap();
    let mut scanned = (0usize, 0usize);
    let mut canary_found: BTreeMap<String, Vec<(String, usize)>> = BTreeMap::new();
    for dir in [&ch_dir, &c.dir] {
        for (path, bytes) in files(dir) {
            scanned.0 += 1;
            scanned.1 += bytes.len();
            for (i, n) in find_all(&matcher, &bytes) {
                let shown = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                if i < known.len() {
                    leaks.push(format!(
                        "{}: {} ({}) {n} times",
                        path.display(),
                        known[i].0,
                        known[i].1
                    ));
                } else {
                    let (addr, form, _) = &canaries[i - known.len()];
                    canary_found
                        .entry(shown)
                        .or_default()
                        .push((format!("{addr} {form}"), n));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "full client addresses found:\n{}",
        leaks.join("\n")
    );
    // Without the collector's logs the scan would prove nothing about them.
    let logs = c.logs();
    assert!(
        logs.contains("tally listening"),
        "the collector's logs exist"
    );

    // The canary is found where it was put: so the scan reads table data (uncompressed), the
    // query log and the server's log.
    let in_files = |part: &str, form: &str| -> usize {
        canary_found
            .iter()
            .filter(|(path, _)| path.contains(part))
            .flat_map(|(_, hits)| hits)
            .filter(|(f, _)| f.contains(form))
            .map(|(_, n)| n)
            .sum()
    };
    let report = format!("{canary_found:#?}");
    assert!(
        in_files("canary/planted", &format!("{CANARY_V4} text")) >= CANARY_ROWS,
        "the text of every planted row, so data is not compressed: {report}"
    );
    assert!(
        in_files("canary/planted", "little-endian") >= CANARY_ROWS,
        "{report}"
    );
    assert!(
        in_files("canary/planted", "IPv4-mapped") >= CANARY_ROWS,
        "{report}"
    );
    assert!(
        in_files(
            "canary/planted",
            &format!("{CANARY_V6} 16 bytes, network order")
        ) >= CANARY_ROWS,
        "{report}"
    );
    assert!(
        in_files("system/query_log", &format!("{CANARY_V6} text")) > 0,
        "the query log is scanned: {report}"
    );
    assert!(
        in_files("server.log", &format!("{CANARY_V4} text")) > 0,
        "the server's log is scanned: {report}"
    );
    eprintln!(
        "scanned {} files, {} bytes, for {} forms of {} addresses",
        scanned.0,
        scanned.1,
        known.len(),
        DOORS.len()
    );
    drop(c);
}
