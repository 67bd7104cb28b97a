//! The `tally` command: migrations, configuration errors and the zero-configuration demo.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::demo::Demo;
use common::{clickhouse, http, query, tally_bin, write_config};

/// The demo without the country database: these tests must not reach for the internet.
const DEMO_ENV: &[(&str, &str)] = &[("TALLY_GEO_AUTO", "false")];

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
    // Every migration, in order (a unit test ties the list to the files in schema/).
    let migrations = tally::store::migrate::MIGRATIONS;
    assert!(migrations.len() >= 3, "{migrations:?}");
    let applied: String = migrations
        .iter()
        .map(|m| format!("applied {}\n", m.name))
        .collect();
    assert_eq!(String::from_utf8_lossy(&first.stdout), applied);
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
        migrations
            .iter()
            .map(|m| format!("{}\t{}", m.version, m.name))
            .collect::<Vec<_>>()
            .join("\n")
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
    let demo = Demo::start(dir.path(), DEMO_ENV);
    assert!(
        dir.path().join("var/clickhouse/config.xml").is_file(),
        "the embedded server lives under ./var/clickhouse"
    );
    // A page view sent to the URL the demo printed is stored in the ClickHouse it printed.
    let r = http()
        .get(format!(
            "{}&url=http%3A%2F%2Flocalhost%2Fdemo&action_name=demo-hit&send_image=0",
            demo.tracking
        ))
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    demo.wait_for("demo-hit").await;
    // The one-time link signs the demo admin in once, and only once.
    let base = demo.base.clone();
    let token = demo.sign_in.split("?t=").nth(1).unwrap().to_string();
    let form = common::raw().get(&demo.sign_in).send().await.unwrap();
    assert_eq!(form.status(), 200);
    assert!(form.text().await.unwrap().contains(&token));
    let spend = || {
        common::raw()
            .post(format!("{base}/login/once"))
            .header("origin", &base)
            .form(&[("t", token.as_str())])
            .send()
    };
    let first = spend().await.unwrap();
    assert_eq!(first.status(), 303);
    let cookie = common::set_cookies(&first)[0].to_string();
    assert!(cookie.starts_with("tally_session="), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let shell = common::raw()
        .get(format!("{base}/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(shell.status(), 200);
    let shell = shell.text().await.unwrap();
    assert!(
        shell.contains(r#""user":{"name":"demo","admin":true}"#),
        "{shell}"
    );
    assert!(shell.contains(r#""demo":true"#), "{shell}");
    assert_eq!(
        spend().await.unwrap().status(),
        401,
        "a one-time link works once"
    );
    // The operator's commands, run beside the demo, use the ClickHouse it started (a second
    // server could not share ./var/clickhouse) and its demo site.
    let run = |args: &[&str]| {
        let out = Command::new(tally_bin())
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        common::succeeded(&out)
    };
    run(&["rollup"]);
    let report = run(&[
        "report",
        "--site",
        "1",
        "--period",
        "day",
        "--by",
        "event:page",
        "--metrics",
        "visitors,pageviews",
        "--format",
        "csv",
    ]);
    assert_eq!(report, "event:page,visitors,pageviews\r\n/demo,1,1\r\n");
    let first_clickhouse = demo.clickhouse.clone();
    demo.stop();
    // Stopping tally stopped its server: nothing is left listening.
    let port = first_clickhouse.rsplit(':').next().unwrap();
    assert!(
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err(),
        "the embedded ClickHouse outlived tally"
    );

    // The data stays in ./var/clickhouse: a second start finds the hit again.
    let again = Demo::start(dir.path(), DEMO_ENV);
    assert_eq!(again.count("demo-hit").await, 1);
    again.stop();
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
        .env("TALLY_GEO_AUTO", "false")
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

/// `tally report` on a database nothing has migrated yet (a first install before `tally serve`
/// ran, or an upgrade whose new tables, such as the top lists, `serve` has not made yet)
/// migrates it first, as `tally rollup` and `tally key` do, and answers from the empty tables.
#[test]
fn report_on_a_fresh_database_migrates_it_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::unique_name("fresh_report");
    let config = write_config(dir.path(), &db, common::SITE);
    let out = Command::new(tally_bin())
        .args(["report", "--site", "1", "--by", "event:page"])
        .args(["--metrics", "visitors", "--format", "csv", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(common::succeeded(&out), "event:page,visitors\r\n");
}
