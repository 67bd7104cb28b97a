//! `tally audit` (the real binary) on a real database: it passes on a clean install that took
//! real traffic, and fails, naming table and column, for each kind of violation a test plants
//! (a full address, an old partition, an old aggregate, an e-mail address, a click id, a full
//! address in a title, an old secret, a pruner that has not run). Each case has a database of
//! its own, so a failure points at exactly one plant.

mod common;

use std::process::Command;

use common::{Collector, SITE, clickhouse, http, query, tally_bin, unique_name, write_config};
use serde_json::Value;
use tally::config::Config;

/// A migrated database with a recent pruner run, and a configuration file for it.
struct Install {
    db: String,
    dir: tempfile::TempDir,
}

impl Install {
    async fn new(prefix: &str) -> Install {
        Self::with_db(&unique_name(prefix)).await
    }

    async fn with_db(db: &str) -> Install {
        let mut cfg = Config::from_table(toml::Table::new()).unwrap();
        cfg.clickhouse.database = db.to_string();
        tally::lifecycle::migrate_on(clickhouse().url(), &cfg)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), db, SITE);
        let install = Install {
            db: db.to_string(),
            dir,
        };
        install.sql("INSERT INTO {db}.prune_runs (run_at, collector, dry_run, partitions, rows, failed, message) VALUES (now() - 600, 'test', 0, 0, 0, 0, '')").await;
        install
    }

    /// Runs `sql` with `{db}` replaced by this database.
    async fn sql(&self, sql: &str) -> String {
        query(&sql.replace("{db}", &self.db)).await
    }

    /// `tally audit [args] --config ..`: (success, stdout, stderr).
    fn audit(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(tally_bin())
            .arg("audit")
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("tally.toml"))
            .output()
            .expect("tally runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `tally audit --json`, parsed; asserts the exit status agrees with `ok`.
    fn audit_json(&self) -> Value {
        let (success, stdout, stderr) = self.audit(&["--json"]);
        let report: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("--json is JSON ({e}): {stdout}\n{stderr}"));
        assert_eq!(report["ok"].as_bool(), Some(success), "{stdout}\n{stderr}");
        report
    }
}

/// The checks of `report` that failed, as `name table.column count`.
fn failures(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            format!(
                "{} {}.{} {}",
                c["name"].as_str().unwrap(),
                c["table"].as_str().unwrap(),
                c["column"].as_str().unwrap(),
                c["count"]
            )
        })
        .collect()
}

/// The one failed check of `report`.
fn only_failure(report: &Value) -> &Value {
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", failures(report));
    failed[0]
}

/// Plants `sql` in a fresh install and audits it: the audit must fail with exactly one check,
/// `name` on `table.column` with `count` rows, in the human report and the JSON alike.
async fn fails_with(sql: &[&str], name: &str, table: &str, column: &str, count: u64) -> Value {
    let install = Install::new("audit_bad").await;
    assert!(install.audit(&[]).0, "clean before the plant");
    for s in sql {
        install.sql(s).await;
    }
    let (success, human, stderr) = install.audit(&[]);
    assert!(!success, "{human}");
    assert!(stderr.contains("violations"), "{stderr}");
    let line = human
        .lines()
        .find(|l| l.starts_with("VIOLATION"))
        .unwrap_or_else(|| panic!("{human}"));
    assert!(
        line.contains(&format!("{name}: {table}.{column}: ")),
        "{line}"
    );
    let report = install.audit_json();
    let failed = only_failure(&report);
    assert_eq!(failed["name"], name, "{failed}");
    assert_eq!(failed["table"], table);
    assert_eq!(failed["column"], column);
    assert_eq!(failed["count"], count, "{failed}");
    failed.clone()
}

#[tokio::test]
async fn a_clean_install_that_took_real_traffic_passes() {
    let db = unique_name("audit_clean");
    let mut c = Collector::start_raw_shared(
        &db,
        &format!(
            "token_auth = \"audit-token-0123456789\"\n\
             [privacy]\ntrusted_proxies = [\"127.0.0.0/8\"]\n{SITE}"
        ),
    );
    // What a privacy audit would catch, had tally stored it as sent.
    let hits = [
        (
            "203.0.113.77",
            "https://example.org/?u=jane@example.com&gclid=abc",
            "Hello",
        ),
        (
            "2001:db8:85a3:1234:5678::9",
            "https://example.org/p?fbclid=1",
            "jane%40example.com",
        ),
        ("::ffff:198.51.100.23", "https://example.org/q?x=1", "ok"),
    ];
    for (ip, url, title) in hits {
        let r = http()
            .get(c.url("/matomo.php"))
            .query(&[
                ("idsite", "1"),
                ("rec", "1"),
                ("url", url),
                ("action_name", title),
                (
                    "urlref",
                    "https://search.example/?q=mail+me+at+joe@example.net",
                ),
                ("send_image", "0"),
            ])
            .header("X-Forwarded-For", ip)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    assert_eq!(c.wait_for("1", 3).await, 3);
    assert!(c.stop());
    let rollup = Command::new(tally_bin())
        .args(["rollup", "--config"])
        .arg(c.dir.join("tally.toml"))
        .output()
        .unwrap();
    common::succeeded(&rollup);
    let install = Install::with_db(&db).await;
    assert_eq!(
        install
            .sql("SELECT count() > 0 FROM {db}.agg_breakdown")
            .await,
        "1"
    );

    let (success, human, stderr) = install.audit(&[]);
    assert!(success, "{human}\n{stderr}");
    assert!(
        human.contains("ok         ip_truncated: events.ip: no address keeps more"),
        "{human}"
    );
    assert!(
        human.contains("ok         no_email: no e-mail address in "),
        "{human}"
    );
    assert!(human.lines().last().unwrap().starts_with("all "), "{human}");
    assert!(!human.contains("jane"), "{human}");

    let report = install.audit_json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["database"], db.as_str());
    let checks = report["checks"].as_array().unwrap();
    let names: std::collections::BTreeSet<&str> =
        checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "aggregate_retention",
            "ip_truncated",
            "no_click_id",
            "no_email",
            "no_ipv4",
            "no_ipv6",
            "pruner_ran",
            "raw_retention",
            "secret_retention",
        ]
    );
    let has = |name: &str, table: &str, column: &str| {
        checks
            .iter()
            .any(|c| c["name"] == name && c["table"] == table && c["column"] == column)
    };
    for (name, table, column) in [
        ("ip_truncated", "events", "ip"),
        ("raw_retention", "events", "ts"),
        ("raw_retention", "visits", "day"),
        ("aggregate_retention", "agg_top_week", "week"),
        ("secret_retention", "day_secrets", "day"),
        ("no_email", "events", "title"),
        ("no_click_id", "visits", "pv_pages"),
        ("no_ipv6", "agg_breakdown", "value"),
        ("pruner_ran", "prune_runs", "run_at"),
    ] {
        assert!(has(name, table, column), "{name} {table}.{column}");
    }
    for c in checks {
        assert!(c["count"].is_u64() && c["ok"].is_boolean(), "{c}");
    }
}

#[tokio::test]
async fn a_full_address_fails_ip_truncated() {
    let failed = fails_with(
        &["INSERT INTO {db}.events (ts, site_id, ip) VALUES \
             (now(), 1, '203.0.0.0'), (now(), 1, '203.0.113.77'), \
             (now(), 1, '2001:db8:85a3:1234:5678::9'), (now(), 1, '2001:db8:85a3::')"],
        "ip_truncated",
        "events",
        "ip",
        2,
    )
    .await;
    let example = failed["example"].as_str().unwrap();
    assert!(
        example.starts_with("203.0.x.x") || example.starts_with("2001:db8:85a3:x:x:x:x:x"),
        "{example}"
    );
}

#[tokio::test]
async fn an_address_with_fewer_bytes_masked_than_configured_fails() {
    // One byte masked where privacy.ip_bytes is 2 (the default).
    fails_with(
        &["INSERT INTO {db}.events (ts, site_id, ip) VALUES (now(), 1, '198.51.100.0')"],
        "ip_truncated",
        "events",
        "ip",
        1,
    )
    .await;
}

#[tokio::test]
async fn an_old_raw_partition_fails_raw_retention() {
    let failed = fails_with(
        &[
            "INSERT INTO {db}.events (ts, site_id, ip) VALUES (now() - 9 * 86400, 1, '203.0.0.0'), \
             (now() - 86400 * 5, 1, '203.0.0.0')",
        ],
        "raw_retention",
        "events",
        "ts",
        1,
    )
    .await;
    assert!(
        failed["example"]
            .as_str()
            .unwrap()
            .starts_with("oldest row of ")
    );
    fails_with(
        &["INSERT INTO {db}.visits (day, site_id, start) VALUES (today() - 9, 1, now() - 9 * 86400)"],
        "raw_retention",
        "visits",
        "day",
        1,
    )
    .await;
}

#[tokio::test]
async fn an_old_aggregate_fails_aggregate_retention() {
    fails_with(
        &[
            "INSERT INTO {db}.agg_daily (day, site_id, visits) VALUES (today() - 200, 1, 5), \
             (today() - 170, 1, 5)",
        ],
        "aggregate_retention",
        "agg_daily",
        "day",
        1,
    )
    .await;
}

#[tokio::test]
async fn an_e_mail_address_in_a_url_fails_no_email() {
    let failed = fails_with(
        &["INSERT INTO {db}.events (ts, site_id, ip, url) VALUES \
             (now(), 1, '203.0.0.0', 'https://example.org/?u=jane.doe%40example.com&p=2'), \
             (now(), 1, '203.0.0.0', 'https://example.org/?u=[email]')"],
        "no_email",
        "events",
        "url",
        1,
    )
    .await;
    assert_eq!(
        failed["example"], "https://example.org/?u=[e-mail]&p=2",
        "redacted"
    );
}

/// Plausible's custom properties are free text too: an address planted in a value is found.
#[tokio::test]
async fn an_e_mail_address_in_a_custom_property_fails_no_email() {
    fails_with(
        &[
            "INSERT INTO {db}.events (ts, site_id, ip, prop_keys, prop_values) VALUES \
             (now(), 1, '203.0.0.0', ['author', 'plan'], ['jane.doe@example.com', 'pro'])",
        ],
        "no_email",
        "events",
        "prop_values",
        1,
    )
    .await;
}

#[tokio::test]
async fn a_click_id_fails_no_click_id_in_rows_arrays_and_aggregates() {
    fails_with(
        &["INSERT INTO {db}.events (ts, site_id, ip, url) VALUES (now(), 1, '203.0.0.0', 'https://example.org/?GCLID=Cj0KCQ')"],
        "no_click_id",
        "events",
        "url",
        1,
    )
    .await;
    fails_with(
        &["INSERT INTO {db}.visits (day, site_id, start, pv_pages) VALUES (today(), 1, now(), ['/a', '/b?x=1&fbclid=IwAR2'])"],
        "no_click_id",
        "visits",
        "pv_pages",
        1,
    )
    .await;
    let failed = fails_with(
        &[
            "INSERT INTO {db}.agg_breakdown (day, site_id, dimension, value, visits) VALUES \
             (today(), 1, 'event:page', '/c?msclkid=42', 1), (today(), 1, 'visit:browser', '?msclkid=1', 1)",
        ],
        "no_click_id",
        "agg_breakdown",
        "value",
        1,
    )
    .await;
    assert_eq!(failed["example"], "event:page: /c?[click id]");
}

/// Custom property values are read where the rollup puts them too: per action in `visits`
/// (nested arrays) and as the values of `event:props:KEY` in the aggregates.
#[tokio::test]
async fn an_e_mail_address_in_a_rolled_up_custom_property_fails_no_email() {
    let failed = fails_with(
        &["INSERT INTO {db}.visits (day, site_id, start, action_pageview, action_prop_keys, action_prop_values) VALUES \
           (today(), 1, now(), [1, 0], [['plan'], ['who']], [['pro'], ['mail jane@example.com']])"],
        "no_email",
        "visits",
        "action_prop_values",
        1,
    )
    .await;
    assert!(
        failed["example"].as_str().unwrap().starts_with("mail "),
        "{failed}"
    );
    let failed = fails_with(
        &[
            "INSERT INTO {db}.agg_breakdown (day, site_id, dimension, value, visits) VALUES \
             (today(), 1, 'event:props:who', 'jane@example.com', 1), (today(), 1, 'visit:browser', 'x@example.com', 1)",
        ],
        "no_email",
        "agg_breakdown",
        "value",
        1,
    )
    .await;
    assert!(
        failed["example"]
            .as_str()
            .unwrap()
            .starts_with("event:props:who: "),
        "{failed}"
    );
}

#[tokio::test]
async fn a_full_address_in_a_title_fails_no_ipv4() {
    fails_with(
        &["INSERT INTO {db}.events (ts, site_id, ip, title) VALUES (now(), 1, '203.0.0.0', 'seen from 192.0.2.44 today')"],
        "no_ipv4",
        "events",
        "title",
        1,
    )
    .await;
}

#[tokio::test]
async fn an_old_secret_fails_secret_retention() {
    // A secret whose 48 hours passed three hours ago; another whose `expires` lies but whose
    // day is long over; and today's, which is fine.
    fails_with(
        &[
            "INSERT INTO {db}.day_secrets (zone, day, secret, created, expires) VALUES \
             ('UTC', today() - 2, 'a', now(), toUInt32(now()) - 3 * 3600), \
             ('UTC', today() - 5, 'b', now(), toUInt32(now()) + 86400), \
             ('UTC', today(), 'c', now(), toUInt32(now()) + 86400)",
        ],
        "secret_retention",
        "day_secrets",
        "day",
        2,
    )
    .await;
}

#[tokio::test]
async fn a_pruner_that_has_not_run_for_two_hours_fails() {
    let install = Install::new("audit_prune").await;
    install
        .sql("ALTER TABLE {db}.prune_runs DELETE WHERE 1")
        .await;
    // The mutation is asynchronous on 18.16: wait until the row is gone.
    for _ in 0..100 {
        if install.sql("SELECT count() FROM {db}.prune_runs").await == "0" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let report = install.audit_json();
    assert_eq!(only_failure(&report)["message"], "the pruner has never run");
    // A dry run does not count; a real one three hours ago is too old.
    install.sql("INSERT INTO {db}.prune_runs (run_at, collector, dry_run) VALUES (now() - 60, 'x', 1), (now() - 3 * 3600, 'x', 0)").await;
    let report = install.audit_json();
    let failed = only_failure(&report);
    assert_eq!(failed["name"], "pruner_ran");
    assert_eq!(failed["table"], "prune_runs");
    assert_eq!(failed["column"], "run_at");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("more than 2 hours ago"),
        "{failed}"
    );
    // A recent run that failed fails the audit too, with its message.
    install.sql("INSERT INTO {db}.prune_runs (run_at, collector, dry_run, failed, message) VALUES (now() - 60, 'x', 0, 1, 'rollup of 2026-11-20 failed')").await;
    let report = install.audit_json();
    let failed = only_failure(&report);
    assert_eq!(failed["example"], "rollup of 2026-11-20 failed");
    // And a good run puts it right.
    install
        .sql("INSERT INTO {db}.prune_runs (run_at, collector, dry_run) VALUES (now() - 30, 'x', 0)")
        .await;
    assert!(install.audit(&[]).0);
}

/// The patterns mean to ClickHouse's RE2 what they mean to the `regex` crate that redacts
/// the examples (the unit tests in `src/audit/patterns.rs` hold the finer cases).
#[tokio::test]
async fn the_patterns_mean_the_same_to_clickhouse() {
    use tally::audit::patterns::{Kind, truncated_pattern};
    let samples = [
        "jane@example.com",
        "u=jane%2Btag%40example.co.uk&x=1",
        "logo@2x.png",
        "[email]",
        "203.0.113.77",
        "app-1.2.3.4.zip",
        "203.0.0.0",
        "2001:db8:85a3:1234:5678:8a2e:370:7334",
        "x=2001:db8::1&y",
        "2001:db8:85a3::",
        "12:30:45",
        "?a=1&GcLiD=x",
        "next=%2Fp%3Fdclid%3D42",
        "/gclid",
        "2001:d00::",
        "10.255.0.0",
        "",
    ];
    let mut patterns: Vec<String> = Kind::ALL.iter().map(|k| k.pattern()).collect();
    patterns.extend((1..=3).map(truncated_pattern));
    for pattern in patterns {
        let re = regex::Regex::new(&pattern).unwrap();
        let expected: Vec<&str> = samples
            .iter()
            .map(|s| if re.is_match(s) { "1" } else { "0" })
            .collect();
        // The pattern goes into SQL as a literal: backslashes and quotes escaped.
        let lit = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
        let arr: Vec<String> = samples.iter().map(|s| lit(s)).collect();
        let got = query(&format!(
            "SELECT arrayStringConcat(arrayMap(s -> toString(match(s, {})), [{}]), ',')",
            lit(&pattern),
            arr.join(", ")
        ))
        .await;
        assert_eq!(got, expected.join(","), "{pattern}");
    }
}
