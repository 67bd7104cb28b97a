//! The cluster tests: a real ClickHouse 18.16 cluster (ZooKeeper, two shards, the first with two
//! replicas; see `harness.rs`) on loopback.

mod collectors;
#[path = "../common/mod.rs"]
mod common;
mod harness;

use std::time::{Duration, Instant};

use harness::{Cluster, Node};

/// Runs `sql` on `node` through the `clickhouse` crate, as tally sends its statements (so the
/// SQL capture keeps it for the chdb check); panics with the node's error log if it fails.
async fn exec(node: &Node, sql: &str) {
    exec_with(node, node.client(), sql).await
}

async fn exec_with(node: &Node, client: clickhouse::Client, sql: &str) {
    if let Err(e) = client.query(sql).execute().await {
        let log = node.error_log();
        let newest: Vec<&str> = log.lines().rev().take(20).collect();
        panic!(
            "node {}: {sql}\n-> {e}\nits error log, newest first:\n{}",
            node.index,
            newest.join("\n")
        );
    }
}

/// Runs `sql` on `node` (not captured) and returns its answer; panics if it fails.
async fn answer(node: &Node, sql: &str) -> String {
    match node.query(sql).await {
        Ok(a) => a,
        Err(e) => panic!("node {}: {sql}\n-> {e}", node.index),
    }
}

/// Polls `sql` on `node` until it answers `want`, for up to `within`; returns how long it took.
async fn eventually(node: &Node, sql: &str, want: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = node.query(sql).await;
        if got.as_deref() == Ok(want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "node {} ({}): {sql} answered {got:?}, not {want:?} within {within:?}",
            node.index,
            node.replica
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const DB: &str = "selftest";

/// Rows of `table` per day on a node, `day:count` comma-separated (`""` when empty).
fn days(table: &str) -> String {
    format!(
        "SELECT arrayStringConcat(groupArray(concat(toString(d), ':', toString(n))), ',') \
         FROM (SELECT d, count() AS n FROM {DB}.{table} GROUP BY d ORDER BY d)"
    )
}

fn has_column(table: &str, column: &str) -> String {
    format!(
        "SELECT count() FROM system.columns WHERE database = '{DB}' AND table = '{table}' \
         AND name = '{column}'"
    )
}

/// The harness on its own, without tally: the cluster forms, a Distributed table spreads rows
/// over both shards, a replica copies its shard, writes go on while one replica is killed, and
/// it catches up when it comes back. Also what tally's cluster mode builds on, as 18.16 does
/// it: `SYSTEM SYNC REPLICA`; `ON CLUSTER` ADD COLUMN on replicated tables (and that it is
/// refused on a Distributed one); REPLACE PARTITION from a plain MergeTree staging table into a
/// replicated one; DROP PARTITION on one replica reaching the other; a table every node holds
/// whole (one ZooKeeper path across shards).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_forms_replicates_and_catches_up() {
    let mut cluster = Cluster::start().await;
    let (zk, chs) = cluster.rss_bytes();
    eprintln!(
        "Cluster::start took {:?}; RSS: ZooKeeper {} MiB, 3 nodes {} MiB",
        cluster.started_in,
        zk >> 20,
        chs >> 20
    );
    let toml: toml::Value = toml::from_str(&cluster.tally_clickhouse_toml(0, DB)).unwrap();
    let ch = &toml["clickhouse"];
    assert_eq!(ch["url"].as_str(), Some(cluster.nodes[0].url().as_str()));
    assert_eq!(ch["cluster"].as_str(), Some("tally"));
    let shards: Vec<Vec<&str>> = ch["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap())
                .collect()
        })
        .collect();
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url()).collect();
    assert_eq!(shards, [vec![&*urls[0], &*urls[1]], vec![&*urls[2]]]);

    // The schema, ON CLUSTER from the entry node, with the contract's ZooKeeper paths.
    let n0 = &cluster.nodes[0];
    exec(
        n0,
        &format!("CREATE DATABASE IF NOT EXISTS {DB} ON CLUSTER tally"),
    )
    .await;
    exec(
        n0,
        &format!(
            "CREATE TABLE IF NOT EXISTS {DB}.t_local ON CLUSTER tally \
             (d Date, k UInt64, v String) \
             ENGINE = ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{DB}/t_local', '{{replica}}') \
             PARTITION BY d ORDER BY k"
        ),
    )
    .await;
    exec(
        n0,
        &format!(
            "CREATE TABLE IF NOT EXISTS {DB}.t ON CLUSTER tally AS {DB}.t_local \
             ENGINE = Distributed(tally, {DB}, t_local, k)"
        ),
    )
    .await;
    for node in &cluster.nodes {
        assert_eq!(answer(node, &format!("EXISTS TABLE {DB}.t")).await, "1");
        assert_eq!(
            answer(node, &format!("EXISTS TABLE {DB}.t_local")).await,
            "1"
        );
    }

    // 1,000 rows through the Distributed table, synchronously: both shards get some, and
    // node 1 holds what node 0 holds.
    let sync = |n: &Node| n.client().with_setting("insert_distributed_sync", "1");
    let insert = |from: u64| {
        format!(
            "INSERT INTO {DB}.t (d, k, v) SELECT toDate('2024-01-01') + (number % 3), \
             number + {from}, 'x' FROM numbers(1000)"
        )
    };
    exec_with(n0, sync(n0), &insert(0)).await;
    let count = format!("SELECT count() FROM {DB}.t_local");
    let shard1: u64 = answer(n0, &count).await.parse().unwrap();
    let shard2: u64 = answer(&cluster.nodes[2], &count).await.parse().unwrap();
    eprintln!("1,000 rows: shard 1 holds {shard1}, shard 2 {shard2}");
    assert!(shard1 > 0 && shard2 > 0, "{shard1} + {shard2}");
    assert_eq!(shard1 + shard2, 1000);
    let took = eventually(
        &cluster.nodes[1],
        &days("t_local"),
        &answer(n0, &days("t_local")).await,
        Duration::from_secs(30),
    )
    .await;
    eprintln!("node 1 held node 0's rows {took:?} after the insert");
    for node in &cluster.nodes {
        assert_eq!(
            answer(node, &format!("SELECT count() FROM {DB}.t")).await,
            "1000"
        );
    }

    // ADD COLUMN ON CLUSTER works on the replicated table (18.16 runs it on one replica per
    // shard, the replicas take it from ZooKeeper); on the Distributed table 18.16 refuses it
    // with `internal_replication` set, so tally alters that one node by node (or drops and
    // creates it again, it holds no data).
    exec(
        n0,
        &format!("ALTER TABLE {DB}.t_local ON CLUSTER tally ADD COLUMN c UInt32 DEFAULT 7"),
    )
    .await;
    let refused = n0
        .query(&format!(
            "ALTER TABLE {DB}.t ON CLUSTER tally ADD COLUMN c UInt32 DEFAULT 7"
        ))
        .await;
    eprintln!("ALTER TABLE t ON CLUSTER (Distributed) on 18.16: {refused:?}");
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("isn't replicated, but shard #")),
        "{refused:?}"
    );
    for node in &cluster.nodes {
        exec(
            node,
            &format!("ALTER TABLE {DB}.t ADD COLUMN c UInt32 DEFAULT 7"),
        )
        .await;
    }
    for node in &cluster.nodes {
        for table in ["t_local", "t"] {
            eventually(node, &has_column(table, "c"), "1", Duration::from_secs(30)).await;
        }
    }
    let total: u64 = answer(n0, &format!("SELECT count() FROM {DB}.t"))
        .await
        .parse()
        .unwrap();
    assert_eq!(
        answer(n0, &format!("SELECT sum(c) FROM {DB}.t")).await,
        (7 * total).to_string()
    );

    // Node 1 crashes. Writes through node 0 go on (the Distributed table writes shard 1's live
    // replica, node 0 itself); a day is replaced from a plain MergeTree staging table (as the
    // rollup builds one) and another dropped meanwhile.
    // The chdb check replays these statements ordered by the second each was first sent, so
    // the staging table made `AS t_local` below must come a second after the ADD COLUMN: in
    // the same second the replay would make it before the column exists.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let leader = "SELECT is_leader FROM system.replicas WHERE table = 't_local'";
    let node1_led = answer(&cluster.nodes[1], leader).await == "1";
    cluster.nodes[1].kill();
    let n0 = &cluster.nodes[0];
    exec_with(n0, sync(n0), &insert(1000)).await;
    exec(
        n0,
        &format!(
            "CREATE TABLE {DB}.s AS {DB}.t_local ENGINE = MergeTree PARTITION BY d ORDER BY k"
        ),
    )
    .await;
    exec(
        n0,
        &format!(
            "INSERT INTO {DB}.s (d, k, v) SELECT toDate('2024-01-01'), number * 2, 'r' \
             FROM numbers(10)"
        ),
    )
    .await;
    exec(
        n0,
        &format!("ALTER TABLE {DB}.t_local REPLACE PARTITION '2024-01-01' FROM {DB}.s"),
    )
    .await;
    exec(n0, &format!("DROP TABLE {DB}.s")).await;
    // 18.16 hands DROP PARTITION to the shard's leader replica: while a dead leader's
    // ZooKeeper session lasts, it fails (`Connection refused` to the leader's native port);
    // then node 0 takes the lead. Not captured: the failed tries would count as rejections.
    let drop_day = format!("ALTER TABLE {DB}.t_local DROP PARTITION '2024-01-03'");
    let started = Instant::now();
    let mut first_error = None;
    loop {
        match n0.query(&drop_day).await {
            Ok(_) => break,
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "{drop_day}: {e}"
                );
                first_error.get_or_insert(e);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "node 1 {} the leader; DROP PARTITION with it dead succeeded after {:?}, first error: \
         {first_error:?}",
        if node1_led { "was" } else { "was not" },
        started.elapsed()
    );
    assert!(
        node1_led || first_error.is_none(),
        "the leader answered: {first_error:?}"
    );
    let shard1_days = answer(n0, &days("t_local")).await;
    assert!(
        shard1_days.starts_with("2024-01-01:10,2024-01-02:") && !shard1_days.contains("01-03"),
        "{shard1_days}"
    );

    // Back again on the same ports and data: it catches up, inserts, replaced and dropped
    // days alike.
    let back = Instant::now();
    cluster.nodes[1].start();
    let up = back.elapsed();
    let (n0, n1) = (&cluster.nodes[0], &cluster.nodes[1]);
    // 18.16 has SYSTEM SYNC REPLICA (waits until the replica has its queue done).
    exec(n1, &format!("SYSTEM SYNC REPLICA {DB}.t_local")).await;
    let synced = back.elapsed();
    assert_eq!(answer(n1, &days("t_local")).await, shard1_days);
    eprintln!(
        "node 1: /ping after {up:?}, SYSTEM SYNC REPLICA done and caught up after {synced:?}"
    );

    // An ON CLUSTER ALTER of a replicated table right after a replica came back: while the
    // replica's old ZooKeeper session lasts, 18.16 may refuse it (`Code: 48 .. Cannot enqueue
    // replicated DDL query for a replicated shard`); tally has to retry. Not captured, as
    // those refusals are expected.
    let alter = format!("ALTER TABLE {DB}.t_local ON CLUSTER tally ADD COLUMN c3 UInt8");
    let started = Instant::now();
    let mut first_error = None;
    while let Err(e) = n0.query(&alter).await {
        assert!(started.elapsed() < Duration::from_secs(60), "{alter}: {e}");
        first_error.get_or_insert(e);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "ON CLUSTER ALTER right after the restart: done after {:?}, first error: {first_error:?}",
        started.elapsed()
    );
    for node in &cluster.nodes {
        eventually(
            node,
            &has_column("t_local", "c3"),
            "1",
            Duration::from_secs(30),
        )
        .await;
    }

    // DROP PARTITION on node 1 drops the day on node 0 too.
    exec(
        &cluster.nodes[1],
        &format!("ALTER TABLE {DB}.t_local DROP PARTITION '2024-01-02'"),
    )
    .await;
    eventually(
        n0,
        &days("t_local"),
        "2024-01-01:10",
        Duration::from_secs(30),
    )
    .await;

    // A table every node holds whole: one ZooKeeper path for all shards, unique replica names.
    exec(
        n0,
        &format!(
            "CREATE TABLE IF NOT EXISTS {DB}.a ON CLUSTER tally (d Date, k UInt64) \
             ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{DB}/a', '{{replica}}') \
             PARTITION BY d ORDER BY k"
        ),
    )
    .await;
    exec(
        n0,
        &format!(
            "INSERT INTO {DB}.a (d, k) SELECT toDate('2024-01-01') + (number % 2), number \
             FROM numbers(100)"
        ),
    )
    .await;
    // ADD COLUMN on one node, without ON CLUSTER: the replicated ALTER reaches every replica
    // of the path, on both shards. ON CLUSTER runs it once per shard on the same path, and the
    // second of the two may find the column there (18.16: `Code: 44 .. Cannot add column c2:
    // column with this name already exists`, about every other run), though the column is
    // then on every node. Tried uncaptured, as that rejection is expected.
    exec(
        n0,
        &format!("ALTER TABLE {DB}.a ADD COLUMN c UInt32 DEFAULT 7"),
    )
    .await;
    let on_cluster = n0
        .query(&format!(
            "ALTER TABLE {DB}.a ON CLUSTER tally ADD COLUMN c2 UInt32 DEFAULT 7"
        ))
        .await;
    eprintln!("ALTER TABLE a (all nodes) ON CLUSTER ADD COLUMN on 18.16: {on_cluster:?}");
    assert!(
        on_cluster.as_ref().is_ok_and(|r| r.lines().count() == 3)
            || on_cluster
                .as_ref()
                .is_err_and(|e| e.contains("column with this name already exists")),
        "{on_cluster:?}"
    );
    let n2 = &cluster.nodes[2];
    exec(
        n2,
        &format!("ALTER TABLE {DB}.a DROP PARTITION '2024-01-02'"),
    )
    .await;
    for node in &cluster.nodes {
        eventually(node, &days("a"), "2024-01-01:50", Duration::from_secs(30)).await;
        eventually(node, &has_column("a", "c"), "1", Duration::from_secs(30)).await;
        eventually(node, &has_column("a", "c2"), "1", Duration::from_secs(30)).await;
    }

    let (zk, chs) = cluster.rss_bytes();
    eprintln!(
        "RSS at the end: ZooKeeper {} MiB, 3 nodes {} MiB",
        zk >> 20,
        chs >> 20
    );
}
