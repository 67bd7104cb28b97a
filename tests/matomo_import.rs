//! Matomo's log importer (`import_logs.py` from matomo-log-analytics) against tally, request for
//! request: an access log is generated at test time, and the calls the importer makes for it
//! are sent as it sends them (API calls as POST forms to `{url}/`, then one bulk POST of JSON
//! objects to `{url}/piwik.php?queuedtracking=0`), with host-based site resolution and with
//! `--idsite`. What is stored is then checked: kinds, URLs, times from the log, truncated
//! addresses and nothing else of them, counts.
//!
//! The importer itself is not part of this repository. To run it for real as well, point
//! `TALLY_MATOMO_IMPORTER` at a checkout's `import_logs.py` (see README, "Importing web-server
//! logs"); `real_importer_stores_the_same_rows` then runs it with `python3`.

mod common;

use std::collections::HashMap;

use chrono::{DateTime, Duration, FixedOffset, Utc};
use common::{Collector, http, query};
use serde_json::{Map, Value, json};

const TOKEN: &str = "import-token-0123456789";

/// Two sites; `unknown.example` in the log is neither.
const SITES: &str = r#"
[[sites]]
id = 1
name = "Example"
domains = ["example.org", "www.example.org"]

[[sites]]
id = 2
name = "Blog"
domains = ["blog.example.net"]
"#;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// One line of the access log.
struct Line {
    host: &'static str,
    ip: &'static str,
    minutes_ago: i64,
    path: &'static str,
    status: u16,
    referrer: &'static str,
    agent: &'static str,
}

/// The log: page views from IPv4 and IPv6 clients, a download, a crawler, a stylesheet, a 404,
/// a second site and a host that is no configured site.
const LOG: &[Line] = &[
    Line {
        host: "example.org",
        ip: "203.0.113.195",
        minutes_ago: 300,
        path: "/",
        status: 200,
        referrer: "https://search.example/?q=tally",
        agent: FIREFOX,
    },
    Line {
        host: "example.org",
        ip: "203.0.113.195",
        minutes_ago: 299,
        path: "/about?lang=en",
        status: 200,
        referrer: "https://example.org/",
        agent: FIREFOX,
    },
    Line {
        host: "www.example.org",
        ip: "2001:db8:85a3:1234:5678:8a2e:370:7334",
        minutes_ago: 200,
        path: "/contact",
        status: 200,
        referrer: "-",
        agent: CHROME,
    },
    Line {
        host: "example.org",
        ip: "198.51.100.7",
        minutes_ago: 100,
        path: "/files/report.pdf",
        status: 200,
        referrer: "https://example.org/about",
        agent: CHROME,
    },
    Line {
        host: "example.org",
        ip: "66.249.66.1",
        minutes_ago: 90,
        path: "/crawled",
        status: 200,
        referrer: "-",
        agent: GOOGLEBOT,
    },
    Line {
        host: "example.org",
        ip: "198.51.100.7",
        minutes_ago: 80,
        path: "/style.css",
        status: 200,
        referrer: "https://example.org/",
        agent: CHROME,
    },
    Line {
        host: "example.org",
        ip: "198.51.100.7",
        minutes_ago: 70,
        path: "/missing",
        status: 404,
        referrer: "-",
        agent: CHROME,
    },
    Line {
        host: "blog.example.net",
        ip: "192.0.2.44",
        minutes_ago: 60,
        path: "/post/1",
        status: 200,
        referrer: "-",
        agent: FIREFOX,
    },
    Line {
        host: "unknown.example",
        ip: "192.0.2.99",
        minutes_ago: 50,
        path: "/elsewhere",
        status: 200,
        referrer: "-",
        agent: FIREFOX,
    },
];

/// The full addresses of the log: none may be stored.
fn full_ips() -> Vec<&'static str> {
    LOG.iter().map(|l| l.ip).collect()
}

/// The log's time of a line, as the web server wrote it (in +02:00).
fn logged_at(now: DateTime<Utc>, line: &Line) -> DateTime<FixedOffset> {
    let zone = FixedOffset::east_opt(2 * 3600).unwrap();
    (now - Duration::minutes(line.minutes_ago)).with_timezone(&zone)
}

/// The log as text: Apache's "vhost_combined" (`%v %h %l %u %t "%r" %>s %b "%{Referer}i"
/// "%{User-agent}i"`) with `vhost`, plain "combined" without.
fn access_log(now: DateTime<Utc>, vhost: bool) -> String {
    let mut out = String::new();
    for l in LOG {
        if vhost {
            out.push_str(l.host);
            out.push(' ');
        }
        out.push_str(&format!(
            "{} - - [{}] \"GET {} HTTP/1.1\" {} 1234 \"{}\" \"{}\"\n",
            l.ip,
            logged_at(now, l).format("%d/%b/%Y:%H:%M:%S %z"),
            l.path,
            l.status,
            l.referrer,
            l.agent
        ));
    }
    out
}

/// Which lines the importer sends at all, with its defaults: no HTTP errors or redirects, no
/// crawlers (it matches agents against its own list), no static files; and which it marks as
/// downloads, by extension.
fn importer_keeps(l: &Line) -> bool {
    let static_file = [".css", ".js", ".png", ".gif", ".ico"]
        .iter()
        .any(|e| l.path.ends_with(e));
    let crawler = ["bot/", "bot-", "crawl", "spider", "googlebot"]
        .iter()
        .any(|b| l.agent.to_lowercase().contains(b));
    l.status < 300 && !crawler && !static_file
}

fn is_download(l: &Line) -> bool {
    [".pdf", ".zip", ".exe"].iter().any(|e| l.path.ends_with(e))
}

/// One API call as the importer makes it: a POST form to the given URL plus `/`.
async fn api_call(c: &Collector, method: &str, extra: &[(&str, &str)]) -> Value {
    let mut form = vec![
        ("module", "API"),
        ("format", "json"),
        ("method", method),
        ("filter_limit", "-1"),
        ("token_auth", TOKEN),
    ];
    form.extend_from_slice(extra);
    let r = http()
        .post(c.url("/"))
        .header("user-agent", "Matomo/LogImport")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{method} {extra:?}");
    r.json().await.unwrap()
}

/// How the importer finds the site of a line.
enum Resolution {
    /// `SitesManager.getSitesIdFromSiteUrl&url=<host>` per host; URLs are `http://<host>/...`.
    ByHost,
    /// `--idsite=N`: `SitesManager.getSiteFromId` once; URLs are the site's `main_url` plus the
    /// path (a log without host names).
    Static(u32),
}

/// The hit the importer sends for a line: a JSON object (not a query string), or `null` for
/// a line whose host is no site.
fn importer_hit(now: DateTime<Utc>, l: &Line, site: Option<(String, String)>) -> Value {
    let Some((idsite, prefix)) = site else {
        return Value::Null;
    };
    let url = format!("{prefix}{}", l.path);
    let referrer = if l.referrer == "-" { "" } else { l.referrer };
    let mut hit = Map::new();
    for (k, v) in [
        ("rec", "1"),
        ("apiv", "1"),
        ("url", url.as_str()),
        ("urlref", referrer),
        ("cip", l.ip),
        ("idsite", idsite.as_str()),
        ("queuedtracking", "0"),
        ("dp", "1"),
        ("ua", l.agent),
        ("bw_bytes", "1234"),
    ] {
        hit.insert(k.into(), json!(v));
    }
    // The log's time converted to UTC, as `YYYY-MM-DD HH:MM:SS`.
    let utc = logged_at(now, l).with_timezone(&Utc);
    hit.insert(
        "cdt".into(),
        json!(utc.format("%Y-%m-%d %H:%M:%S").to_string()),
    );
    hit.insert(
        "cvar".into(),
        json!(format!("{{\"1\": [\"HTTP-code\", \"{}\"]}}", l.status)),
    );
    if is_download(l) {
        hit.insert("download".into(), json!(url));
    }
    Value::Object(hit)
}

/// Replays the importer on the log: resolution calls, then one bulk request. Returns the
/// lines sent, in order, and the tracker's reply.
async fn replay(c: &Collector, now: DateTime<Utc>, how: Resolution) -> (Vec<&'static Line>, Value) {
    let static_site = match how {
        Resolution::Static(id) => {
            let site = api_call(
                c,
                "SitesManager.getSiteFromId",
                &[("idSite", &id.to_string())],
            )
            .await;
            assert_ne!(site["result"], "error", "{site}");
            Some((
                id.to_string(),
                site["main_url"].as_str().unwrap().to_string(),
            ))
        }
        Resolution::ByHost => None,
    };
    let mut by_host: HashMap<&str, Option<String>> = HashMap::new();
    let mut sent = Vec::new();
    let mut requests = Vec::new();
    for l in LOG.iter().filter(|l| importer_keeps(l)) {
        let site = match &static_site {
            Some(s) => Some(s.clone()),
            None => {
                if !by_host.contains_key(l.host) {
                    let ids =
                        api_call(c, "SitesManager.getSitesIdFromSiteUrl", &[("url", l.host)]).await;
                    let first = ids
                        .as_array()
                        .unwrap_or_else(|| panic!("{ids}"))
                        .first()
                        .map(|row| row["idsite"].as_str().unwrap().to_string());
                    by_host.insert(l.host, first);
                }
                by_host[l.host]
                    .clone()
                    .map(|id| (id, format!("http://{}", l.host)))
            }
        };
        requests.push(importer_hit(now, l, site));
        sent.push(l);
    }
    let r = http()
        .post(c.url("/piwik.php?queuedtracking=0"))
        .header("content-type", "application/json")
        .header("user-agent", "Matomo/LogImport")
        .body(json!({ "token_auth": TOKEN, "requests": requests }).to_string())
        .send()
        .await
        .unwrap();
    // Anything but 2xx makes the importer retry and then give up.
    assert_eq!(r.status(), 200);
    (sent, r.json().await.unwrap())
}

fn collector() -> Collector {
    Collector::start_raw(&format!("token_auth = \"{TOKEN}\"\n{SITES}"))
}

/// `site, kind, url, target_url, ip, referrer, unix time` of every stored row but the
/// barrier's, by time.
async fn rows(c: &Collector) -> String {
    query(&format!(
        "SELECT site_id, kind, url, target_url, ip, referrer, toUnixTimestamp(ts) \
         FROM {}.events WHERE url != 'https://example.org/barrier' ORDER BY ts, url FORMAT TSV",
        c.db
    ))
    .await
}

fn row(now: DateTime<Utc>, l: &Line, site: u32, url: &str, ip: &str) -> String {
    let kind = if is_download(l) {
        "download"
    } else {
        "pageview"
    };
    let target = if is_download(l) { url } else { "" };
    let referrer = if l.referrer == "-" { "" } else { l.referrer };
    let ts = (now - Duration::minutes(l.minutes_ago)).timestamp();
    format!("{site}\t{kind}\t{url}\t{target}\t{ip}\t{referrer}\t{ts}")
}

/// No text column of the collector's database, and no line of its log, holds a full address.
async fn assert_no_full_address(c: &Collector) {
    let columns = query(&format!(
        "SELECT table, name FROM system.columns WHERE database = '{}' AND type LIKE '%String%'",
        c.db
    ))
    .await;
    assert!(columns.lines().count() >= 10, "{columns}");
    for line in columns.lines() {
        let (table, column) = line.split_once('\t').unwrap();
        for ip in full_ips() {
            let n = query(&format!(
                "SELECT count() FROM {}.{table} WHERE position(toString(`{column}`), '{ip}') > 0",
                c.db
            ))
            .await;
            assert_eq!(n, "0", "{table}.{column} holds {ip}");
        }
    }
    let logs = c.logs();
    for ip in full_ips() {
        assert!(!logs.contains(ip), "the collector's log holds {ip}");
    }
}

/// The rows the log must leave with host-based resolution.
fn expected_by_host(now: DateTime<Utc>) -> String {
    [
        row(now, &LOG[0], 1, "http://example.org/", "203.0.0.0"),
        row(
            now,
            &LOG[1],
            1,
            "http://example.org/about?lang=en",
            "203.0.0.0",
        ),
        row(
            now,
            &LOG[2],
            1,
            "http://www.example.org/contact",
            "2001:db8:85a3::",
        ),
        row(
            now,
            &LOG[3],
            1,
            "http://example.org/files/report.pdf",
            "198.51.0.0",
        ),
        row(
            now,
            &LOG[7],
            2,
            "http://blog.example.net/post/1",
            "192.0.0.0",
        ),
    ]
    .join("\n")
}

#[tokio::test]
async fn host_based_resolution_stores_each_site_and_skips_unknown_hosts() {
    let c = collector();
    let now = Utc::now();
    std::fs::write(c.dir.join("access.log"), access_log(now, true)).unwrap();
    let (sent, reply) = replay(&c, now, Resolution::ByHost).await;
    // Four of example.org's lines, one of the blog, and the unknown host's as `null`.
    assert_eq!(sent.len(), 6);
    assert!(sent.iter().any(|l| l.host == "unknown.example"));
    // As in Matomo, the `null` entry is an empty request: counted as tracked, nothing stored,
    // not invalid (so the importer does not report the line twice).
    assert_eq!(reply["status"], "success", "{reply}");
    assert_eq!(reply["tracked"], 6, "{reply}");
    assert_eq!(reply["invalid_indices"], json!([]), "{reply}");

    assert_eq!(c.wait_for("1", 5).await, 5);
    // Everything sent before it has been stored or dropped once the barrier is stored.
    barrier(&c).await;
    assert_eq!(rows(&c).await, expected_by_host(now));
    assert_eq!(c.count("url LIKE '%unknown.example%' OR url LIKE '%crawled%' OR url LIKE '%.css' OR url LIKE '%missing%'").await, 0);
    assert_no_full_address(&c).await;
}

#[tokio::test]
async fn static_site_id_puts_every_line_under_the_main_url() {
    let c = collector();
    let now = Utc::now();
    std::fs::write(c.dir.join("access.log"), access_log(now, false)).unwrap();
    let (sent, reply) = replay(&c, now, Resolution::Static(1)).await;
    assert_eq!(sent.len(), 6);
    assert_eq!(reply["status"], "success", "{reply}");
    assert_eq!(reply["tracked"], 6, "{reply}");
    assert_eq!(reply["invalid"], 0, "{reply}");
    assert_eq!(c.wait_for("1", 6).await, 6);
    barrier(&c).await;
    let expected = [
        row(now, &LOG[0], 1, "https://example.org/", "203.0.0.0"),
        row(
            now,
            &LOG[1],
            1,
            "https://example.org/about?lang=en",
            "203.0.0.0",
        ),
        row(
            now,
            &LOG[2],
            1,
            "https://example.org/contact",
            "2001:db8:85a3::",
        ),
        row(
            now,
            &LOG[3],
            1,
            "https://example.org/files/report.pdf",
            "198.51.0.0",
        ),
        row(now, &LOG[7], 1, "https://example.org/post/1", "192.0.0.0"),
        row(
            now,
            &LOG[8],
            1,
            "https://example.org/elsewhere",
            "192.0.0.0",
        ),
    ]
    .join("\n");
    assert_eq!(rows(&c).await, expected);
    assert_no_full_address(&c).await;
}

/// A last page view through the same bulk path, waited for: the queue is first in, first
/// out, so every earlier hit has been written or dropped once it is stored.
async fn barrier(c: &Collector) {
    let body = json!({
        "token_auth": TOKEN,
        "requests": [{"idsite": 1, "rec": 1, "url": "https://example.org/barrier"}],
    });
    let r = http()
        .post(c.url("/piwik.php"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        c.wait_for("url = 'https://example.org/barrier'", 1).await,
        1
    );
}

/// The importer itself, unchanged, on the same log: the stored rows must be those the replay
/// above stores. The importer is no package a machine here can install, so this test is
/// ignored unless run by hand with a copy of it:
/// `TALLY_MATOMO_IMPORTER=/path/to/import_logs.py cargo test --test matomo_import -- --ignored`.
#[tokio::test]
#[ignore = "needs TALLY_MATOMO_IMPORTER=/path/to/import_logs.py (matomo-log-analytics)"]
async fn real_importer_stores_the_same_rows() {
    let script = std::env::var("TALLY_MATOMO_IMPORTER")
        .expect("TALLY_MATOMO_IMPORTER=/path/to/import_logs.py");
    let c = collector();
    let now = Utc::now();
    let log = c.dir.join("access.log");
    std::fs::write(&log, access_log(now, true)).unwrap();
    let out = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(format!("--url={}", c.base))
        .arg(format!("--token-auth={TOKEN}"))
        .arg("--log-format-name=common_complete")
        .arg("--retry-max-attempts=1")
        .arg(&log)
        .output()
        .await
        .expect("python3 runs");
    let stdout = common::succeeded(&out);
    assert!(
        stdout.contains("6 requests imported successfully"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 requests did not match any known site"),
        "{stdout}"
    );
    assert_eq!(c.wait_for("1", 5).await, 5);
    barrier(&c).await;
    assert_eq!(rows(&c).await, expected_by_host(now));
    assert_no_full_address(&c).await;
}
