//! The first run: `tally geo update` fetches the free country database from an npm registry
//! (here a local HTTP server serving a real package tarball built from the real database in
//! `tests/fixtures/geo/`), refuses a tarball that fails its integrity check, `tally serve` fetches
//! the database once at start and fills countries from it, starts offline without it, picks up
//! a `tally geo update` while it runs; and the demo's `/demo` page, which exists only in the
//! demo and carries the tracking snippet of the collector.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::demo::Demo;
use common::{Collector, tally_bin};
use tally::geo_update::{FILE_NAME, PACKAGE};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/geo")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run tests/fixtures/fetch-geo.sh first",
            path.display()
        )
    })
}

/// The real country database (the same file the npm package ships).
fn country_db() -> Vec<u8> {
    fixture("geo-whois-asn-country.mmdb")
}

/// A package tarball laid out like the npm package: `package/` with `package.json`, an
/// IPv4-only half first (here a different, small real database, so picking the wrong entry
/// shows) and then `db` under the database's own name.
fn package(db: &[u8]) -> Vec<u8> {
    let decoy = fixture("GeoLite2-Country-Test.mmdb");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut tar = tar::Builder::new(&mut gz);
        let files: [(&str, &[u8]); 3] = [
            (
                "package/package.json",
                br#"{"name":"@ip-location-db/geo-whois-asn-country-mmdb"}"#,
            ),
            ("package/geo-whois-asn-country-ipv4.mmdb", &decoy),
            ("package/geo-whois-asn-country.mmdb", db),
        ];
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, data).unwrap();
        }
        tar.finish().unwrap();
    }
    gz.finish().unwrap()
}

fn integrity(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA512, bytes);
    format!("sha512-{}", STANDARD.encode(d.as_ref()))
}

/// A local npm registry: a real HTTP server on a thread that answers `GET
/// /<package>/latest` with metadata naming `/tarball.tgz` and the integrity it was given, and
/// `GET /tarball.tgz` with the bytes it was given (which may differ: tampering).
struct Registry {
    base: String,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Registry {
    fn start() -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let (f, h) = (files.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // Skip the headers.
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_string();
                h.lock().unwrap().push(path.clone());
                let body = f.lock().unwrap().get(&path).cloned();
                let head = match &body {
                    Some(b) => format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        b.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_string()
                    }
                };
                let _ = stream.write_all(head.as_bytes());
                if let Some(b) = body {
                    let _ = stream.write_all(&b);
                }
            }
        });
        Registry { base, files, hits }
    }

    /// Publishes `tarball` under `integrity` (normally the tarball's own).
    fn publish(&self, version: &str, tarball: Vec<u8>, integrity: &str) {
        let meta = serde_json::json!({
            "name": PACKAGE,
            "version": version,
            "license": "CC0-1.0",
            "dist": {
                "tarball": format!("{}/tarball.tgz", self.base),
                "integrity": integrity,
                "shasum": "0000000000000000000000000000000000000000",
            }
        });
        let mut files = self.files.lock().unwrap();
        files.insert(format!("/{PACKAGE}/latest"), meta.to_string().into_bytes());
        files.insert("/tarball.tgz".into(), tarball);
    }

    fn requests(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

/// `tally geo update` in `dir` (no config: the demo's data directory `dir/var`).
fn geo_update(dir: &Path, registry: &str) -> std::process::Output {
    Command::new(tally_bin())
        .args(["geo", "update"])
        .current_dir(dir)
        .env("TALLY_GEO_REGISTRY", registry)
        .output()
        .unwrap()
}

#[test]
fn geo_update_installs_the_database_and_refuses_a_tampered_tarball() {
    let registry = Registry::start();
    let db = country_db();
    let tarball = package(&db);
    registry.publish("2.3.2026061719", tarball.clone(), &integrity(&tarball));
    let dir = tempfile::tempdir().unwrap();
    let installed = dir.path().join("var").join(FILE_NAME);

    let stdout = common::succeeded(&geo_update(dir.path(), &registry.base));
    assert!(
        stdout.contains("2.3.2026061719") && stdout.contains("CC0-1.0"),
        "{stdout}"
    );
    // The whole database (IPv4 and IPv6), not the other .mmdb before it in the package.
    assert!(
        std::fs::read(&installed).unwrap() == db,
        "installed file differs"
    );
    assert!(stdout.contains("IPv6"), "{stdout}");
    assert_eq!(
        registry.requests(),
        [format!("/{PACKAGE}/latest"), "/tarball.tgz".to_string()]
    );

    // One byte changed in the tarball, the registry's integrity unchanged: refused, and the
    // installed database stays as it was, with no temporary file left behind.
    let mut tampered = tarball.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    registry.publish("2.3.2026061720", tampered, &integrity(&tarball));
    let before = std::fs::metadata(&installed).unwrap().modified().unwrap();
    let out = geo_update(dir.path(), &registry.base);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a tampered tarball was accepted");
    assert!(stderr.contains("integrity check failed"), "{stderr}");
    assert_eq!(
        std::fs::metadata(&installed).unwrap().modified().unwrap(),
        before
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("var"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, [FILE_NAME], "only the database is in var/");

    // A package whose database is not one the reader opens: refused too.
    let broken = package(b"not a MaxMind database");
    registry.publish("2.3.2026061721", broken.clone(), &integrity(&broken));
    let out = geo_update(dir.path(), &registry.base);
    assert!(!out.status.success(), "a broken database was accepted");
    assert!(std::fs::read(&installed).unwrap() == db);

    // No registry at all: an error naming it, not a hang.
    let out = geo_update(dir.path(), "http://127.0.0.1:1");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The token of the first run's tests: hits with it may say where they come from (`cip`).
const TOKEN: &str = "first-run-token-0123456789";

/// The demo with the test's registry, and [`TOKEN`].
fn start_demo(dir: &Path, registry: &str) -> Demo {
    Demo::start(
        dir,
        &[
            ("TALLY_GEO_REGISTRY", registry),
            ("TALLY_TOKEN_AUTH", TOKEN),
        ],
    )
}

/// A page view of `page` (site 1) sent to `base` from `ip` ([`TOKEN`] makes it trusted),
/// titled `title`.
async fn hit_from(base: &str, page: &str, ip: &str, title: &str) {
    let resp = reqwest::Client::new()
        .get(format!("{base}/matomo.php"))
        .query(&[
            ("idsite", "1"),
            ("rec", "1"),
            ("url", page),
            ("action_name", title),
            ("cip", ip),
            ("token_auth", TOKEN),
        ])
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
}

/// The country stored for the hit titled `title` in `db` on the ClickHouse at `clickhouse`,
/// once it is stored; fails with `log()` after 15 seconds.
async fn stored_country(
    clickhouse: &str,
    db: &str,
    title: &str,
    log: impl Fn() -> String,
) -> String {
    let start = std::time::Instant::now();
    loop {
        // Bracketed: the answer is trimmed, and an empty country is an answer too.
        let out = common::query_on(
            clickhouse,
            &format!("SELECT concat('[', country, ']') FROM {db}.events WHERE title = '{title}'"),
        )
        .await;
        if let Some(line) = out.lines().next() {
            return line.trim_matches(['[', ']']).to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "hit {title} not stored: {}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What this file asks of the demo besides what every demo test does.
impl Demo {
    async fn hit_from(&self, ip: &str, title: &str) {
        hit_from(&self.base, "http://localhost/demo", ip, title).await;
    }

    async fn country_of(&self, title: &str) -> String {
        stored_country(&self.clickhouse, &self.database, title, || self.log()).await
    }
}

#[tokio::test]
async fn the_first_run_fetches_the_database_fills_countries_and_serves_the_demo_page() {
    let registry = Registry::start();
    let db = country_db();
    let tarball = package(&db);
    registry.publish("2.3.2026061719", tarball.clone(), &integrity(&tarball));
    let dir = tempfile::tempdir().unwrap();
    let demo = start_demo(dir.path(), &registry.base);
    assert!(
        std::fs::read(dir.path().join("var").join(FILE_NAME)).unwrap() == db,
        "the first run did not install the database: {}",
        demo.log()
    );
    assert!(demo.log().contains("country database installed"));

    // A public address the real database places in Germany (its /16, which is what is looked
    // up, too), and the loopback address, which no database places anywhere.
    demo.hit_from("193.99.144.80", "from-de").await;
    demo.hit_from("127.0.0.1", "from-loopback").await;
    assert_eq!(demo.country_of("from-de").await, "DE");
    assert_eq!(demo.country_of("from-loopback").await, "");

    // The demo page: the snippet exactly as `tally snippet` prints it, pointing at this
    // collector, allowed by its hash; the opt-out widget; the link to the dashboard.
    let resp = reqwest::get(format!("{}/demo", demo.base)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let page = resp.text().await.unwrap();
    let snippet = Command::new(tally_bin())
        .args(["snippet", "--site", "1"])
        .current_dir(dir.path())
        .env("TALLY_LISTEN", demo.base.trim_start_matches("http://"))
        .output()
        .unwrap();
    let snippet = String::from_utf8(snippet.stdout).unwrap();
    let script = snippet
        .split_once("<script>")
        .and_then(|(_, rest)| rest.split_once("</script>"))
        .unwrap()
        .0;
    assert!(
        script.contains(&format!("var u=\"{}/\";", demo.base)),
        "{script}"
    );
    assert!(
        page.contains(&format!("<script>{script}</script>")),
        "{page}\n---\n{script:?}"
    );
    let hash = format!(
        "'sha256-{}'",
        STANDARD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            script.as_bytes()
        ))
    );
    assert!(
        csp.contains(&format!("script-src {hash} 'self' {}", demo.base)),
        "{csp}"
    );
    assert!(page.contains(r#"<div id="tally-optout"></div>"#), "{page}");
    assert!(
        page.contains(r#"<a href="./">Open the dashboard</a>"#),
        "{page}"
    );
    assert!(
        page.contains("geo-whois-asn-country.mmdb (country ipvAll)"),
        "{page}"
    );
    let about = reqwest::get(format!("{}/demo?page=about", demo.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(about.contains("<h1>About this demo</h1>"), "{about}");
    let leaflet = reqwest::get(format!("{}/demo/leaflet.txt", demo.base))
        .await
        .unwrap();
    assert_eq!(leaflet.status(), 200);
    assert!(
        leaflet.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );

    // `tally geo update` while serving: another database (MaxMind's test country database,
    // published as a new version) replaces the file, and the running collector uses it within
    // seconds, as its page says.
    let other = fixture("GeoLite2-Country-Test.mmdb");
    let tarball = package(&other);
    registry.publish("2.3.2026061800", tarball.clone(), &integrity(&tarball));
    common::succeeded(&geo_update(dir.path(), &registry.base));
    let start = std::time::Instant::now();
    loop {
        let page = reqwest::get(format!("{}/demo", demo.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains("geo-whois-asn-country.mmdb (GeoLite2-Country)") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the replaced database was not picked up: {}",
            demo.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // MaxMind's test database does not know Germany's 193.99.0.0.
    demo.hit_from("193.99.144.80", "from-de-after-update").await;
    assert_eq!(demo.country_of("from-de-after-update").await, "");
    demo.stop();
}

#[tokio::test]
async fn offline_the_collector_starts_without_countries_and_picks_up_a_later_update() {
    // With a configuration (so no `/demo`) and nothing listening where the registry should be.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = common::unique_name("fr");
    let config = common::write_config(
        dir.path(),
        &db,
        &format!(
            "token_auth = \"{TOKEN}\"\n{}\n[geo]\nregistry = \"http://127.0.0.1:1\"\n",
            common::SITE
        ),
    );
    let mut child = Command::new(tally_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env("TALLY_CLICKHOUSE_EMBEDDED_DIR", data.join("clickhouse"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let started = std::time::Instant::now();
    stdout.read_line(&mut first).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the failed fetch held the start too long"
    );
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
    });
    let base = first
        .trim()
        .strip_prefix("tally listening on ")
        .unwrap_or_else(|| panic!("{first}{}", log()))
        .to_string();
    assert!(
        log().contains("could not fetch the country database"),
        "{}",
        log()
    );
    assert!(!data.join(FILE_NAME).exists());

    let hit = |title: String| {
        let base = base.clone();
        async move { hit_from(&base, "https://example.org/", "193.99.144.80", &title).await }
    };
    let country = |title: String| {
        let db = db.clone();
        async move { stored_country(common::clickhouse().url(), &db, &title, log).await }
    };
    hit("offline".into()).await;
    assert_eq!(country("offline".into()).await, "");

    // Back online: `tally geo update` with the same configuration writes the file, and the
    // running collector starts using it within seconds, without a restart.
    let registry = Registry::start();
    let tarball = package(&country_db());
    registry.publish("2.3.2026061719", tarball.clone(), &integrity(&tarball));
    let out = Command::new(tally_bin())
        .args(["geo", "update", "--config"])
        .arg(&config)
        .env("TALLY_CLICKHOUSE_EMBEDDED_DIR", data.join("clickhouse"))
        .env("TALLY_GEO_REGISTRY", &registry.base)
        .output()
        .unwrap();
    common::succeeded(&out);
    assert!(data.join(FILE_NAME).exists());
    let start = std::time::Instant::now();
    for i in 0.. {
        let title = format!("online-{i}");
        hit(title.clone()).await;
        if country(title).await == "DE" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the database written after start was not picked up: {}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

#[tokio::test]
async fn there_is_no_demo_page_with_a_config() {
    let c = Collector::start("");
    let resp = reqwest::get(c.url("/demo")).await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = reqwest::get(c.url("/demo/leaflet.txt")).await.unwrap();
    assert_eq!(resp.status(), 404);
}
