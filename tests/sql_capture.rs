//! The capture behind `tests/modern/check_schema.py`: a test ClickHouse hands over, as it
//! stops, exactly the statements tally's own client sent (not the harness's), with the errors of
//! those it rejected. If this broke, the check of every statement on ClickHouse 26 would check
//! nothing, or the wrong SQL.

use std::path::Path;
use std::time::Duration;

use clickhouse::Row;
use serde::Deserialize;
use tally::config::Config;
use tally::store::embedded::{EmbeddedClickHouse, SQL_CAPTURE_ENV};

#[derive(Row, Deserialize)]
struct Marker {
    tally_marker: u8,
}

/// The files the supervisors left in `dir`, by extension.
fn files(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect()
}

#[test]
fn a_stopping_server_leaves_the_statements_of_tallys_client() {
    let capture = tempfile::tempdir().unwrap();
    // A directory of its own, also under tests/run-all.sh: the rejected statement below must
    // not reach the real check.
    // SAFETY: the only test of this binary, before it starts any thread of its own; the
    // variable must reach the server's supervisor, which reads it from the environment.
    unsafe { std::env::set_var(SQL_CAPTURE_ENV, capture.path()) };
    let dir = tempfile::Builder::new()
        .prefix("tally-test-capture-")
        .tempdir()
        .unwrap()
        .keep();
    let ch = EmbeddedClickHouse::start(&dir, true).expect("start a test ClickHouse");
    assert_eq!(
        files(capture.path(), "pending").len(),
        1,
        "a running server is marked as not yet dumped"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cfg = Config::from_table(toml::Table::new()).unwrap();
    rt.block_on(async {
        let client = tally::store::server_client(ch.url(), &cfg.clickhouse);
        let row: Marker = client
            .query("SELECT toUInt8(?) AS tally_marker")
            .bind(42)
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(row.tally_marker, 42);
        // Rejected by the server: kept, with its error.
        assert!(
            client
                .query_raw("SELECT no_such_column AS tally_rejected")
                .execute()
                .await
                .is_err()
        );
        // The harness's own SQL (reqwest, no clickhouse-rs User-Agent) is not tally's.
        let r = reqwest::Client::new()
            .post(ch.url())
            .body("SELECT 43 AS harness_marker")
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    });
    drop(rt);
    // Returns once the supervisor has dumped the log and stopped the server.
    ch.stop();

    assert!(
        files(capture.path(), "pending").is_empty(),
        "dump incomplete: {:?}",
        std::fs::read_dir(capture.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>()
    );
    let dumps = files(capture.path(), "jsonl");
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&dumps[0])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |text: &str| {
        rows.iter()
            .find(|r| r["query"].as_str().unwrap().contains(text))
            .cloned()
    };
    // The bound value is rendered into the statement, so it can be run as it is.
    let sent = find("tally_marker").expect("tally's statement captured");
    assert_eq!(sent["query"], "SELECT toUInt8(42) AS tally_marker");
    assert_eq!(sent["errors"], serde_json::json!([]));
    assert!(
        sent["settings"]
            .as_array()
            .unwrap()
            .contains(&"log_queries".into()),
        "{sent}"
    );
    let rejected = find("tally_rejected").expect("a rejected statement is captured");
    assert!(
        rejected["errors"][0]
            .as_str()
            .unwrap()
            .contains("no_such_column"),
        "{rejected}"
    );
    assert!(find("harness_marker").is_none(), "{rows:?}");
    assert!(
        !dir.exists(),
        "the server's directory is removed after the dump"
    );
}
