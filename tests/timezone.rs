//! Day boundaries are UTC days whatever the time zone of the ClickHouse server: a hit at 23:30
//! UTC belongs to that UTC day on a server in UTC+14 and on one in UTC-8 alike, in what it
//! reads back as, in the partition it is stored in, and so in what the pruner deletes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{http, query_on, tally_bin, unique_name};
use tally::config::Config;
use tally::store::embedded::EmbeddedClickHouse;

const TOKEN: &str = "timezone-token-0123456789";
const DAY: u32 = 86_400;

/// A `tally serve` writing to database `db` on the server at `ch_url`; killed on drop.
struct Serve {
    base: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Serve {
    fn start(ch_url: &str, db: &str) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tally.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ntoken_auth = \"{TOKEN}\"\n\
                 [clickhouse]\nurl = \"{ch_url}\"\ndatabase = \"{db}\"\n\
                 [sink]\nflush_ms = 50\n[spool]\ndir = \"{}\"\n{}",
                dir.path().join("spool").display(),
                common::SITE
            ),
        )
        .unwrap();
        let log = dir.path().join("stderr.log");
        let mut child = Command::new(tally_bin())
            .args(["serve", "--config"])
            .arg(&config)
            .env("TALLY_GEO_AUTO", "false")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn tally");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // The first line announces the address once the schema is migrated and the port bound.
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let Some(base) = first.strip_prefix("tally listening on ") else {
            let _ = child.kill();
            panic!(
                "tally did not start: {first:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let base = base.to_string();
        // Keep reading so tally never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Serve {
            base,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `YYYYMMDD` of the UTC day of `unix`, as `toYYYYMMDD` of a UTC `DateTime` prints it.
fn utc_yyyymmdd(unix: u32) -> u32 {
    chrono::DateTime::from_timestamp(i64::from(unix), 0)
        .unwrap()
        .format("%Y%m%d")
        .to_string()
        .parse()
        .unwrap()
}

/// What one server in `timezone` shows, end to end.
async fn utc_days_on_a_server_in(timezone: &str) {
    let dir = tempfile::Builder::new()
        .prefix("tally-test-tz-")
        .tempdir()
        .unwrap()
        .keep();
    let ch = EmbeddedClickHouse::start_with_timezone(&dir, true, timezone)
        .expect("start a test ClickHouse");
    let url = ch.url().to_string();
    // The server really runs in that zone: a plain DateTime would be read in it.
    assert_eq!(query_on(&url, "SELECT timezone()").await, timezone);

    let db = unique_name("tz");
    let collector = Serve::start(&url, &db);
    // Day D is two days ago (well inside the 7 days `cdt` may reach back); one hit at 23:30 UTC
    // of D, one at 00:30 UTC of D+1: the same calendar day in Los Angeles, the same calendar
    // day (D+1) in Kiritimati, two different UTC days.
    let now = tally::time::now_unix();
    let d = now / DAY - 2;
    let late = d * DAY + 23 * 3600 + 1800;
    let early = (d + 1) * DAY + 1800;
    for (ts, title) in [(late, "late"), (early, "early")] {
        let r = http()
            .get(format!("{}/matomo.php", collector.base))
            .query(&[
                ("idsite", "1"),
                ("rec", "1"),
                ("url", "https://example.org/tz"),
                ("action_name", title),
                ("cdt", &ts.to_string()),
                ("token_auth", TOKEN),
                ("send_image", "0"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{title}: {}", r.text().await.unwrap());
    }
    let start = Instant::now();
    while query_on(&url, &format!("SELECT count() FROM {db}.events")).await != "2" {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the two hits were not stored on the server in {timezone}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The column carries its zone, so nothing depends on the server's.
    assert_eq!(
        query_on(
            &url,
            &format!("SELECT toTypeName(ts) FROM {db}.events LIMIT 1 FORMAT TabSeparatedRaw")
        )
        .await,
        "DateTime('UTC')",
        "on the server in {timezone}"
    );
    // The same instants come back, and read as UTC wall-clock times.
    let (d_day, next_day) = (utc_yyyymmdd(late), utc_yyyymmdd(early));
    let iso = |n: u32| {
        let s = n.to_string();
        format!("{}-{}-{}", &s[..4], &s[4..6], &s[6..])
    };
    assert_eq!(
        query_on(
            &url,
            &format!(
                "SELECT title, toUInt32(ts), toString(ts), toYYYYMMDD(ts) FROM {db}.events \
                 ORDER BY ts"
            )
        )
        .await,
        format!(
            "late\t{late}\t{} 23:30:00\t{d_day}\nearly\t{early}\t{} 00:30:00\t{next_day}",
            iso(d_day),
            iso(next_day)
        ),
        "on the server in {timezone}"
    );
    // Each hit is stored in the partition of its UTC day.
    assert_eq!(
        query_on(
            &url,
            &format!(
                "SELECT partition, sum(rows) FROM system.parts \
                 WHERE database = '{db}' AND table = 'events' AND active \
                 GROUP BY partition ORDER BY partition"
            )
        )
        .await,
        format!("{d_day}\t1\n{next_day}\t1"),
        "partitions on the server in {timezone}"
    );

    // The pruner deletes UTC days: at the last second of D+6 both days are kept; at the first
    // second of D+7, day D is 7 days old and goes, D+1 stays.
    let mut cfg = Config::from_table(toml::Table::new()).unwrap();
    cfg.clickhouse.database = db.clone();
    let client = tally::store::client(&url, &cfg.clickhouse);
    let pruner = tally::prune::Pruner::new(client.clone(), &cfg);
    let kept = pruner.run((d + 7) * DAY - 1, false).await;
    assert!(
        kept.dropped_from("events").is_empty() && !kept.failed(),
        "dropped {kept:?} too early in {timezone}"
    );
    let dropped = pruner.run((d + 7) * DAY, false).await;
    assert_eq!(
        dropped.dropped_from("events"),
        vec![d_day.to_string()],
        "on the server in {timezone}"
    );
    assert_eq!(
        query_on(&url, &format!("SELECT title FROM {db}.events")).await,
        "early",
        "on the server in {timezone}"
    );
    drop(client);
    drop(collector);
    // Off the runtime's thread: the server waits for our idle connections to close, which
    // needs the runtime to run (blocking it here cost ten seconds).
    tokio::task::spawn_blocking(move || ch.stop())
        .await
        .unwrap();
}

#[tokio::test]
async fn utc_days_on_a_server_14_hours_ahead() {
    utc_days_on_a_server_in("Pacific/Kiritimati").await;
}

#[tokio::test]
async fn utc_days_on_a_server_8_hours_behind() {
    utc_days_on_a_server_in("America/Los_Angeles").await;
}
