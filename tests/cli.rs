//! The `tally` command: migrations, configuration errors and the zero-configuration demo.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{clickhouse, http, query, tally_bin, write_config};

#[tokio::test]
async fn migrate_applies_once_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("mig_{}", std::process::id());
    let config = write_config(dir.path(), &db, "");
    let run = || {
        Command::new(tally_bin())
            .args(["migrate", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        "applied 0001_events.sql\napplied 0002_visitor_secrets.sql\n"
    );
    let second = run();
    assert!(second.status.success());
    assert_eq!(
        String::from_utf8_lossy(&second.stdout),
        "schema is up to date\n"
    );
    assert_eq!(
        query(&format!(
            "SELECT version, name FROM {db}.schema_migrations ORDER BY version"
        ))
        .await,
        "1\t0001_events.sql\n2\t0002_visitor_secrets.sql"
    );
    // The table is partitioned by day, so the pruner can drop whole days.
    assert_eq!(
        query(&format!(
            "SELECT partition_key FROM system.tables WHERE database = '{db}' AND name = 'events'"
        ))
        .await,
        "toYYYYMMDD(ts)"
    );
}

#[test]
fn event_struct_matches_the_table() {
    // RowBinary is positional and validation is off for ClickHouse 18.16: the Rust struct and
    // the table must list the same columns in the same order.
    use clickhouse::Row;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("cols_{}", std::process::id());
    let config = write_config(dir.path(), &db, "");
    let out = Command::new(tally_bin())
        .args(["migrate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success());
    let columns = rt.block_on(query(&format!("DESCRIBE TABLE {db}.events")));
    let table: Vec<&str> = columns
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(table, tally::event::Event::COLUMN_NAMES);
}

#[test]
fn invalid_config_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[privacy]\nip_bytes = 5\n").unwrap();
    let out = Command::new(tally_bin())
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("privacy.ip_bytes") && err.contains("1, 2 or 3"),
        "{err}"
    );

    // The same through the environment.
    let out = Command::new(tally_bin())
        .args(["serve"])
        .env("TALLY_PRIVACY_TRUSTED_PROXIES", "10.0.0.0/99")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("privacy.trusted_proxies"), "{err}");
}

#[tokio::test]
async fn demo_mode_runs_its_own_clickhouse() {
    let _ = clickhouse();
    // No config file: demo site 1 on localhost, embedded ClickHouse under ./var.
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(tally_bin())
        .arg("serve")
        .current_dir(dir.path())
        .env("TALLY_LISTEN", "127.0.0.1:0")
        .env("TALLY_SINK_FLUSH_MS", "50")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("tally listening on ")
        .unwrap()
        .to_string();
    let storage = lines.next().unwrap().unwrap();
    assert!(
        storage.starts_with("events stored in ClickHouse at http://127.0.0.1:"),
        "{storage}"
    );
    let tracking = lines.next().unwrap().unwrap();
    assert!(tracking.contains("/matomo.php?idsite=1"), "{tracking}");
    let r = http()
        .get(format!("{base}/matomo.php"))
        .query(&[
            ("idsite", "1"),
            ("rec", "1"),
            ("url", "http://localhost/demo"),
            ("send_image", "0"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success());
    // The embedded server's data stays in ./var/clickhouse; the hit is in it.
    let data = dir.path().join("var/clickhouse/db/data/tally/events");
    assert!(data.is_dir(), "{} missing", data.display());
    let parts = std::fs::read_dir(&data)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("20")
        })
        .count();
    assert!(parts >= 1, "no data part written");
}

#[tokio::test]
async fn serve_starts_beside_kubernetes_service_variables() {
    // Kubernetes sets these in every pod of a namespace with a service named `tally`.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("k8s_{}", std::process::id());
    let config = write_config(dir.path(), &db, common::SITE);
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(tally_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env("TALLY_SERVICE_HOST", "10.0.0.1")
        .env("TALLY_SERVICE_PORT", "8080")
        .env("TALLY_PORT", "tcp://10.0.0.1:8080")
        .env("TALLY_PORT_8080_TCP_ADDR", "10.0.0.1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Read stdout to its end in the background: tally writes more lines after the first, and
    // a closed pipe would end it.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .ok()
        .and_then(|l| l.strip_prefix("tally listening on ").map(String::from));
    let Some(base) = base else {
        let _ = child.kill();
        panic!(
            "tally did not start: {}",
            std::fs::read_to_string(&log).unwrap()
        );
    };
    let page = http()
        .get(format!("{base}/optout?idsite=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(
        err.contains(
            "TALLY_PORT, TALLY_PORT_8080_TCP_ADDR, TALLY_SERVICE_HOST, TALLY_SERVICE_PORT"
        ),
        "the ignored names are logged: {err}"
    );
    assert!(!err.contains("10.0.0.1"), "values are not logged: {err}");
}
