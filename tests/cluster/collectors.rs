//! tally on the cluster: `tally serve` twice, each writing through the Distributed tables of
//! a different node, under steady load, while the second replica of the first shard is killed
//! and later started again. Nothing acknowledged may be lost or stored twice, the reports must
//! equal what the raw events say, and the replica must catch up. Then the pruner drops an old
//! day on every shard, after the rollup has counted it.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::faults::{self, Load, Tally, check_exactly_once};
use crate::common::{SITE, tally_bin};
use crate::harness::{Cluster, Node};
use crate::{answer, eventually};

const DB: &str = "tally_cluster";

/// The visitors the load cycles through (their `_id`): enough that both shards get many.
const VISITORS: u64 = 64;

/// A page view marked `marker` (`h<n>`) from visitor `n % VISITORS`.
fn visitor_hit(marker: &str) -> String {
    let n: u64 = marker[1..].parse().expect("markers are h<number>");
    format!(
        "{}&_id={:016x}",
        faults::hit_query(marker, 0),
        0x7a11_0000 + n % VISITORS
    )
}

/// `tally serve`'s configuration with node `entry` as its entry node.
fn config(cluster: &Cluster, entry: usize, dir: &Path) -> String {
    format!(
        r#"listen = "127.0.0.1:0"

{clickhouse}
[spool]
dir = "{spool}"

[sink]
flush_ms = 100
insert_timeout_secs = 5
shutdown_timeout_secs = 10

[rollup]
interval_secs = 0
{SITE}"#,
        clickhouse = cluster.tally_clickhouse_toml(entry, DB),
        spool = dir.join("spool").display(),
    )
}

fn start_tally(cluster: &Cluster, entry: usize) -> Tally {
    let tmp = tempfile::Builder::new()
        .prefix("tally-cluster-collector-")
        .tempdir()
        .unwrap();
    let config = config(cluster, entry, tmp.path());
    Tally::start_with_config(tmp, &config)
}

/// Runs `tally <args> --config <t's config>` and returns its standard output.
fn run_tally(t: &Tally, args: &[&str]) -> String {
    let out = std::process::Command::new(tally_bin())
        .args(args)
        .arg("--config")
        .arg(t.dir.join("tally.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tally {args:?}: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn number(node: &Node, sql: &str) -> u64 {
    let a = answer(node, sql).await;
    a.parse()
        .unwrap_or_else(|_| panic!("node {}: {sql} answered {a:?}", node.index))
}

/// Every title stored in `events` (through the Distributed table) with its count.
async fn stored(node: &Node) -> HashMap<String, u64> {
    answer(
        node,
        &format!("SELECT title, count() FROM {DB}.events WHERE title LIKE 'h%' GROUP BY title"),
    )
    .await
    .lines()
    .filter_map(|l| l.split_once('\t'))
    .map(|(t, n)| (t.to_string(), n.parse().unwrap()))
    .collect()
}

/// One number of the JSON report (`tally report --format json`): `results[0].metrics[i]`.
fn report_metrics(json: &str) -> Vec<u64> {
    let v: serde_json::Value = serde_json::from_str(json).expect("the report is JSON");
    v["results"][0]["metrics"]
        .as_array()
        .unwrap_or_else(|| panic!("no metrics in {json}"))
        .iter()
        .map(|m| m.as_f64().expect("a number") as u64)
        .collect()
}

/// With the SQL capture on, writes every statement `tally migrate --cluster` sends, in order,
/// for `tests/modern/check_schema.py`: the captured statements lose their order, and the
/// cluster schema (drops, renames, Distributed tables made anew) only runs in its own.
fn write_schema_for_the_check() {
    let Some(dir) =
        std::env::var_os(tally::store::embedded::SQL_CAPTURE_ENV).filter(|d| !d.is_empty())
    else {
        return;
    };
    let layout = tally::store::cluster::Layout {
        cluster: crate::harness::CLUSTER.to_string(),
        database: DB.to_string(),
    };
    let statements = tally::store::migrate::all_statements(Some(&layout)).unwrap();
    let text: String = statements.iter().map(|s| format!("{s};\n\n")).collect();
    std::fs::write(
        Path::new(&dir).join(format!("schema-of-cluster-{DB}.sql")),
        text,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_lose_no_hit_while_a_replica_dies_and_reports_stay_exact() {
    let mut cluster = Cluster::start().await;
    write_schema_for_the_check();
    // The first collector makes the schema (`ON CLUSTER`); the second finds it made.
    let a = start_tally(&cluster, 0);
    // The second collector reads the day's visitor secret the first one made from its own
    // node, once the replication has brought it there. (Two collectors starting at the same
    // instant on different nodes could each make one; until their next refresh the same visitor
    // would then have two keys, which the erasure below would tell apart.)
    let secrets = format!("SELECT count() FROM {DB}.day_secrets");
    let made = answer(&cluster.nodes[0], &secrets).await;
    eventually(&cluster.nodes[2], &secrets, &made, Duration::from_secs(30)).await;
    let b = start_tally(&cluster, 2);
    for node in &cluster.nodes {
        assert_eq!(
            answer(
                node,
                &format!(
                    "SELECT engine FROM system.tables WHERE database = '{DB}' \
                     AND name IN ('events', 'events_local', 'visits', 'visits_local', 'agg_daily') \
                     ORDER BY name"
                )
            )
            .await,
            "ReplicatedMergeTree\nDistributed\nReplicatedMergeTree\nDistributed\nReplicatedMergeTree",
            "node {}: tables of the cluster schema",
            node.index
        );
    }

    let load_a = Load::start_with(&a.base, 120, 2, visitor_hit);
    let load_b = Load::start_with(&b.base, 120, 2, visitor_hit);
    tokio::time::sleep(Duration::from_secs(8)).await;
    // The second replica of the first shard dies: the Distributed inserts of both collectors
    // go to the first replica meanwhile.
    tokio::task::block_in_place(|| cluster.nodes[1].kill());
    let acked_at_kill = load_a.acked() + load_b.acked();
    // A collector starts while the replica is down: a start runs no `ON CLUSTER` statement
    // once the schema is there (those wait for every node).
    let started = Instant::now();
    let c = tokio::task::block_in_place(|| start_tally(&cluster, 2));
    let c_started = started.elapsed();
    assert!(
        c_started < Duration::from_secs(20),
        "a collector took {c_started:?} to start with a replica down"
    );
    drop(c);
    tokio::time::sleep(Duration::from_secs(15).saturating_sub(started.elapsed())).await;
    let acked_while_down = load_a.acked() + load_b.acked() - acked_at_kill;
    tokio::task::block_in_place(|| cluster.nodes[1].start());
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut outcomes = load_a.stop().await;
    outcomes.extend(load_b.stop().await);
    outcomes.assert_all_acknowledged("while a replica is down and back");
    assert!(
        acked_while_down > 1000,
        "the load went on while the replica was down ({acked_while_down} hits)"
    );
    let acked = outcomes.acked().len() as u64;

    // Every acknowledged hit is stored, once.
    let node0 = &cluster.nodes[0];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut total = 0;
    while Instant::now() < deadline {
        total = number(
            node0,
            &format!("SELECT count() FROM {DB}.events WHERE title LIKE 'h%'"),
        )
        .await;
        if total >= acked {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let stored = stored(node0).await;
    if let Err(e) = check_exactly_once(&outcomes, &stored) {
        panic!(
            "{e}\ncollector A's log:\n{}\ncollector B's log:\n{}",
            a.logs(),
            b.logs()
        );
    }

    // Both shards hold a share; the replica that died holds all of its shard's again.
    let local = |table: &str| format!("SELECT count() FROM {DB}.{table}_local");
    let shard1 = number(node0, &local("events")).await;
    let shard2 = number(&cluster.nodes[2], &local("events")).await;
    assert!(
        shard1 > acked / 5 && shard2 > acked / 5,
        "both shards hold a share: {shard1} + {shard2} of {acked}"
    );
    assert_eq!(shard1 + shard2, total, "the shards' shares add up");
    let caught_up = eventually(
        &cluster.nodes[1],
        &local("events"),
        &shard1.to_string(),
        Duration::from_secs(120),
    )
    .await;
    eprintln!(
        "{}; {acked_while_down} acknowledged while replica ch2 was down; shards {shard1} + \
         {shard2}; ch2 caught up {caught_up:?} after its restart was seen; a third collector \
         started in {c_started:?} while ch2 was down",
        outcomes.summary()
    );

    // The reports equal what the raw events say. Each shard made the visits of its own
    // visitors; the aggregates were made from all of them, and every node has them.
    run_tally(&a, &["rollup"]);
    let truth = answer(
        node0,
        &format!(
            "SELECT uniqExact(visitor_key), uniqExact(visitor_key, toDate(ts)), countIf(kind = 'pageview') \
             FROM {DB}.events WHERE site_id = 1 AND title LIKE 'h%'"
        ),
    )
    .await;
    let truth: Vec<u64> = truth.split('\t').map(|n| n.parse().unwrap()).collect();
    assert_eq!(truth[2], acked, "one page view per acknowledged hit");
    let sums = format!(
        "SELECT sum(visitors), sum(visits), sum(pageviews) FROM {DB}.agg_daily WHERE site_id = 1"
    );
    let want = format!("{}\t{}\t{}", truth[0], truth[1], truth[2]);
    for node in &cluster.nodes {
        eventually(node, &sums, &want, Duration::from_secs(60)).await;
    }
    let today = chrono::Utc::now().date_naive();
    let from = (today - chrono::Days::new(1)).to_string();
    let report = run_tally(
        &b,
        &[
            "report",
            "--site",
            "1",
            "--from",
            &from,
            "--to",
            &today.to_string(),
            "--metrics",
            "visitors,visits,pageviews",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        report_metrics(&report),
        truth,
        "tally report through the other collector's node: {report}"
    );

    // A data subject's erasure reaches the shard that holds the visitor (a mutation on each
    // shard's local table) and, through the replication, the replica it did not ask.
    let erased = outcomes
        .acked()
        .iter()
        .filter(|m| m[1..].parse::<u64>().unwrap() % VISITORS == 0)
        .count() as u64;
    assert!(erased > 0);
    run_tally(
        &a,
        &[
            "subject",
            "erase",
            "--site",
            "1",
            "--visitor-id",
            &format!("{:016x}", 0x7a11_0000u64),
        ],
    );
    let left = number(
        node0,
        &format!("SELECT count() FROM {DB}.events WHERE title LIKE 'h%'"),
    )
    .await;
    assert_eq!(
        left,
        acked - erased,
        "the erasure removed the visitor's hits, only those"
    );
    let shard1_left = number(node0, &local("events")).await;
    eventually(
        &cluster.nodes[1],
        &local("events"),
        &shard1_left.to_string(),
        Duration::from_secs(60),
    )
    .await;

    // An old day on both shards: the pruner rolls it up, then drops it on every shard (and
    // the replication drops it on the replica it did not ask).
    let old_day = today - chrono::Days::new(30);
    answer(
        node0,
        &format!(
            "INSERT INTO {DB}.events (ts, site_id, kind, visitor_key, title) \
             SELECT toDateTime('{old_day} 12:00:00', 'UTC') + number, 1, 'pageview', \
             cityHash64(number), 'old' FROM system.numbers LIMIT 40"
        ),
    )
    .await;
    // Without `insert_distributed_sync` (no SETTINGS on an 18.16 INSERT) the rows reach the
    // shards in the background.
    eventually(
        node0,
        &format!("SELECT count() FROM {DB}.events WHERE title = 'old'"),
        "40",
        Duration::from_secs(30),
    )
    .await;
    let old_local = format!("SELECT count() FROM {DB}.events_local WHERE title = 'old'");
    let old_on_shards = (
        number(node0, &old_local).await,
        number(&cluster.nodes[2], &old_local).await,
    );
    assert!(
        old_on_shards.0 > 0 && old_on_shards.1 > 0 && old_on_shards.0 + old_on_shards.1 == 40,
        "the old day is on both shards: {old_on_shards:?}"
    );
    eventually(
        &cluster.nodes[1],
        &old_local,
        &old_on_shards.0.to_string(),
        Duration::from_secs(60),
    )
    .await;
    run_tally(&a, &["prune"]);
    for node in &cluster.nodes {
        eventually(node, &old_local, "0", Duration::from_secs(60)).await;
        eventually(
            node,
            &format!(
                "SELECT sum(pageviews), sum(visits) FROM {DB}.agg_daily WHERE day = '{old_day}' AND site_id = 1"
            ),
            "40\t40",
            Duration::from_secs(60),
        )
        .await;
    }
    // The audit reads every shard through the Distributed tables and finds nothing to report.
    run_tally(&a, &["audit"]);
    let (zk, nodes) = cluster.rss_bytes();
    eprintln!(
        "RSS: ZooKeeper {} MB, ClickHouse nodes {} MB in all",
        zk >> 20,
        nodes >> 20
    );
}
