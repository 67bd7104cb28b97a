//! tally's tables on a ClickHouse cluster: which are sharded, how `schema/` becomes replicated
//! and `Distributed` tables, and how to reach each shard's own tables.
//!
//! Storage scales on ClickHouse's own replication and sharding, never on a scheme of tally's:
//! every table is a `Replicated*MergeTree` (ZooKeeper or ClickHouse Keeper keeps the replicas
//! equal), and the two tables that grow with the traffic, `events` and `visits`, are split over
//! the shards. Their rows live in `events_local`/`visits_local` on each node; `events`/`visits`
//! are `Distributed` tables over them, so writes and reads keep their single-server names. Every
//! other table (daily aggregates, secrets, accounts, keys, ledgers) is small and every node holds
//! it whole, so reports from aggregates never leave the node they ask.
//!
//! The schema files stay written for one server; [`transform`] turns each statement into its
//! cluster form, and fails on a statement it does not understand, so a new migration cannot
//! silently break cluster installs (a unit test runs every migration through it).

use std::borrow::Cow;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::Client;
use crate::config::ClickHouseConfig;

/// The sharding key of `events` and `visits`: the visitor key.
///
/// Every statistic tally computes from these tables is per visitor and day: a visit is a run of
/// one key's hits, a day's visitors are its distinct keys, and a key lives one day (keys rotate
/// at the site's local midnight). With the key as the sharding key all hits of a key, so all of
/// a visit, land on one shard: each shard computes its visits alone and exactly, and distinct
/// visitors over several shards are a plain sum, because the shards' key sets are disjoint.
/// No report needs a cross-shard `uniq` or join, and one shard's outage never splits a visit.
pub const SHARDING_KEY: &str = "visitor_key";

/// Tables split over the shards; every other table is whole on every node.
const SHARDED: &[&str] = &["events", "visits"];

/// Whether `name` can be a cluster's name here: it is spliced into `ON CLUSTER` and
/// `Distributed(..)`, where such names need no quoting.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `table` is split over the shards (`events`, `visits`, and the temporary tables a
/// migration makes of them, such as `events_0003`).
pub fn is_sharded(table: &str) -> bool {
    SHARDED.iter().any(|t| {
        table == *t
            || table
                .strip_prefix(t)
                .is_some_and(|rest| rest.starts_with('_'))
    })
}

/// The name of the table holding a node's own rows of sharded `table`.
pub fn local_name(table: &str) -> String {
    format!("{table}_local")
}

/// The cluster tally's schema lives on: the `remote_servers` name and tally's database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The `remote_servers` name (`ON CLUSTER`, `Distributed(..)`).
    pub cluster: String,
    /// tally's database on every node.
    pub database: String,
}

impl Layout {
    /// The layout of `cfg`, if it names a cluster.
    pub fn of(cfg: &ClickHouseConfig) -> Option<Layout> {
        cfg.cluster.as_ref().map(|cluster| Layout {
            cluster: cluster.clone(),
            database: cfg.database.clone(),
        })
    }

    /// `CREATE DATABASE` on every node.
    pub fn create_database(&self) -> String {
        format!(
            "CREATE DATABASE IF NOT EXISTS {} ON CLUSTER {}",
            self.database, self.cluster
        )
    }

    fn qualified(&self, table: &str) -> String {
        format!("{}.{table}", self.database)
    }

    /// The ZooKeeper path of replicated `table` (a `_local` name for sharded ones): per shard
    /// for sharded tables, one for the whole cluster otherwise. The latter is why the `replica`
    /// macro must be unique in the whole cluster, not only within a shard.
    fn zk_path(&self, table: &str, sharded: bool) -> String {
        let scope = if sharded { "{shard}" } else { "all" };
        format!("/clickhouse/tables/{scope}/{}/{table}", self.database)
    }

    fn distributed(&self, table: &str) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} ON CLUSTER {} AS {} ENGINE = Distributed({}, {}, {}, {SHARDING_KEY})",
            self.qualified(table),
            self.cluster,
            self.qualified(&local_name(table)),
            self.cluster,
            self.database,
            local_name(table),
        )
    }

    fn drop(&self, table: &str) -> String {
        format!(
            "DROP TABLE IF EXISTS {} ON CLUSTER {}",
            self.qualified(table),
            self.cluster
        )
    }
}

/// Why a statement has no cluster form.
#[derive(Debug, thiserror::Error)]
#[error("no cluster form for this schema statement ({reason}): {statement}")]
pub struct Unsupported {
    reason: &'static str,
    statement: String,
}

static CREATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?s)^CREATE TABLE (IF NOT EXISTS )?(\w+) (\(.*\))\s*ENGINE = (\w*MergeTree)(\(([^)]*)\))?(.*)$",
    )
    .expect("valid regex")
});
static DROP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^DROP TABLE (IF EXISTS )?(\w+)$").expect("valid regex"));
static RENAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^RENAME TABLE (\w+ TO \w+(?:, \w+ TO \w+)*)$").expect("valid regex")
});
static ALTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)^ALTER TABLE (\w+) (.*)$").expect("valid regex"));

/// The statements that do on `layout` what `statement` (from `schema/`) does on one server.
///
/// - `CREATE TABLE t (..) ENGINE = XMergeTree ..`: `ReplicatedXMergeTree` on every node
///   (`ON CLUSTER`); for a sharded table as `t_local`, plus `t` as a `Distributed` table.
/// - `DROP TABLE`, `RENAME TABLE`: on every node, for both tables of a sharded one; a rename
///   makes the `Distributed` tables anew, since they name their local table.
/// - `ALTER TABLE`: a sharded table's local tables `ON CLUSTER`, its `Distributed` table made
///   anew; a table every node holds whole on this node only, as the replication carries the
///   change to the others (`ON CLUSTER` would run it once per shard on the one shared table).
/// - `INSERT`: as it is, on this node (through the `Distributed` table for sharded ones).
pub fn transform(statement: &str, layout: &Layout) -> Result<Vec<String>, Unsupported> {
    let unsupported = |reason| Unsupported {
        reason,
        statement: statement.chars().take(120).collect(),
    };
    let s = statement.trim();
    let c = &layout.cluster;
    if s.starts_with("INSERT INTO ") {
        return Ok(vec![s.to_string()]);
    }
    if let Some(m) = CREATE.captures(s) {
        let if_not = m.get(1).map_or("", |x| x.as_str());
        let table = &m[2];
        let columns = &m[3];
        let engine = &m[4];
        let args = m.get(6).map_or("", |x| x.as_str()).trim();
        let rest = one_line(&m[7]);
        if engine.starts_with("Replicated") {
            return Err(unsupported("already replicated"));
        }
        let sharded = is_sharded(table);
        let name = if sharded {
            local_name(table)
        } else {
            table.to_string()
        };
        let extra = if args.is_empty() {
            String::new()
        } else {
            format!(", {args}")
        };
        let mut out = vec![format!(
            "CREATE TABLE {if_not}{} ON CLUSTER {c} {columns} ENGINE = Replicated{engine}('{}', '{{replica}}'{extra}) {rest}",
            layout.qualified(&name),
            layout.zk_path(&name, sharded),
        )];
        if sharded {
            out.push(layout.distributed(table));
        }
        return Ok(out);
    }
    if let Some(m) = DROP.captures(s) {
        let table = &m[2];
        return Ok(if is_sharded(table) {
            vec![layout.drop(table), layout.drop(&local_name(table))]
        } else {
            vec![layout.drop(table)]
        });
    }
    if let Some(m) = RENAME.captures(s) {
        let pairs: Vec<(&str, &str)> = m[1]
            .split(", ")
            .filter_map(|p| p.split_once(" TO "))
            .collect();
        let sharded = pairs.iter().filter(|(a, b)| is_sharded(a) && is_sharded(b));
        if sharded.clone().count() == 0 {
            if pairs.iter().any(|(a, b)| is_sharded(a) || is_sharded(b)) {
                return Err(unsupported("renames between sharded and whole tables"));
            }
            let list: Vec<String> = pairs
                .iter()
                .map(|(a, b)| format!("{} TO {}", layout.qualified(a), layout.qualified(b)))
                .collect();
            return Ok(vec![format!(
                "RENAME TABLE {} ON CLUSTER {c}",
                list.join(", ")
            )]);
        }
        if sharded.count() != pairs.len() {
            return Err(unsupported("renames between sharded and whole tables"));
        }
        // The Distributed tables go first and come back over the renamed local tables.
        let mut names: Vec<&str> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
        names.dedup();
        let mut out: Vec<String> = Vec::new();
        for name in &names {
            let drop = layout.drop(name);
            if !out.contains(&drop) {
                out.push(drop);
            }
        }
        let list: Vec<String> = pairs
            .iter()
            .map(|(a, b)| {
                format!(
                    "{} TO {}",
                    layout.qualified(&local_name(a)),
                    layout.qualified(&local_name(b))
                )
            })
            .collect();
        out.push(format!("RENAME TABLE {} ON CLUSTER {c}", list.join(", ")));
        out.extend(pairs.iter().map(|(_, b)| layout.distributed(b)));
        return Ok(out);
    }
    if let Some(m) = ALTER.captures(s) {
        let table = &m[1];
        let change = &m[2];
        return Ok(if is_sharded(table) {
            // The Distributed table is made anew over the changed local one rather than
            // altered: 18.16 refuses `ALTER .. ON CLUSTER` of a table that is not replicated
            // on a cluster whose shards replicate internally ("Table events isn't replicated,
            // but shard #2 is replicated according to its cluster definition"). It holds no
            // rows (inserts are synchronous), so nothing is lost; statements on it fail for
            // the moment between, and the writer retries.
            vec![
                format!(
                    "ALTER TABLE {} ON CLUSTER {c} {change}",
                    layout.qualified(&local_name(table))
                ),
                layout.drop(table),
                layout.distributed(table),
            ]
        } else {
            vec![format!("ALTER TABLE {} {change}", layout.qualified(table))]
        });
    }
    Err(unsupported("unknown kind of statement"))
}

/// `text` with its runs of white space made one space (an engine clause has no string
/// literals whose spaces would matter).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The plain `MergeTree` engine clause of `table` as `schema/` creates it last, for staging
/// tables on a cluster: `CREATE TABLE s AS t` would copy `t`'s replicated engine with its
/// ZooKeeper path and so join `t`'s replicas. `None` for a table no migration creates.
pub fn plain_engine(table: &str) -> Option<String> {
    let mut found = None;
    for m in super::migrate::MIGRATIONS {
        for statement in m.statements() {
            if let Some(c) = CREATE.captures(&statement) {
                // `events_0003` became `events` in its migration.
                let name = c[2].strip_suffix("_0003").unwrap_or(&c[2]);
                if name == table {
                    let args = c.get(5).map_or("", |x| x.as_str());
                    found = Some(format!("{}{args} {}", &c[4], one_line(&c[7])));
                }
            }
        }
    }
    found
}

/// The `CREATE TABLE` of a staging table `staging` shaped like `table` (which a node holds):
/// the same columns, a plain engine with the same partition and sorting keys, so that
/// `REPLACE PARTITION .. FROM` accepts it.
pub fn staging_table(staging: &str, table: &str, on_cluster: bool) -> String {
    let source = if on_cluster && is_sharded(table) {
        Cow::Owned(local_name(table))
    } else {
        Cow::Borrowed(table)
    };
    match (on_cluster, plain_engine(table)) {
        (true, Some(engine)) => format!("CREATE TABLE {staging} AS {source} ENGINE = {engine}"),
        _ => format!("CREATE TABLE {staging} AS {source}"),
    }
}

/// Checks that the node behind `server` knows `layout`'s cluster, with `shards` shards when
/// given (the length of `[clickhouse] shards`, which must list them in the same order).
pub async fn check(server: &Client, layout: &Layout, shards: Option<usize>) -> Result<(), String> {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Count {
        n: u64,
    }
    let n = server
        .query("SELECT count(DISTINCT shard_num) AS n FROM system.clusters WHERE cluster = ?")
        .bind(&layout.cluster)
        .fetch_one::<Count>()
        .await
        .map_err(|e| format!("reading system.clusters: {e}"))?
        .n;
    if n == 0 {
        return Err(format!(
            "this ClickHouse knows no cluster {:?} (its remote_servers); see deploy/cluster/",
            layout.cluster
        ));
    }
    match shards {
        Some(listed) if listed as u64 != n => Err(format!(
            "cluster {:?} has {n} shard(s), but [clickhouse] shards lists {listed}",
            layout.cluster
        )),
        _ => Ok(()),
    }
}

/// `url` as it may appear in a log line: without a user name or password in it.
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "(not a URL)".to_string(),
    }
}

/// How long a replica may take to answer `SELECT 1` before the next one of its shard is tried.
const REACH_TIMEOUT: Duration = Duration::from_secs(3);

/// Clients for each shard's replicas, for work on a shard's own tables (`visits_local`,
/// `events_local`): the rollup's visits, the pruner's partitions, erasures.
#[derive(Clone)]
pub struct Shards {
    replicas: Vec<Vec<(String, Client)>>,
}

/// No replica of a shard answered.
#[derive(Debug, thiserror::Error)]
#[error("no replica of shard {shard} answers ({tried})")]
pub struct Unreachable {
    /// 1-based, as `system.clusters` counts.
    pub shard: usize,
    tried: String,
}

impl Shards {
    /// Clients for the configured shards, set up like `client` (database, credentials,
    /// settings) but for each replica's URL. `None` without a cluster.
    pub fn of(cfg: &ClickHouseConfig) -> Option<Shards> {
        cfg.cluster.as_ref()?;
        Some(Shards {
            replicas: cfg
                .shards
                .iter()
                .map(|replicas| {
                    replicas
                        .iter()
                        .map(|url| (without_credentials(url), super::client(url, cfg)))
                        .collect()
                })
                .collect(),
        })
    }

    /// The same replicas with `f` applied to each client (a setting for one kind of work).
    pub fn map_clients(self, f: impl Fn(Client) -> Client) -> Shards {
        Shards {
            replicas: self
                .replicas
                .into_iter()
                .map(|r| r.into_iter().map(|(url, c)| (url, f(c))).collect())
                .collect(),
        }
    }

    /// How many shards there are.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Whether there are none (never, for a validated config).
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// A client of the first replica of shard `index` (0-based) that answers `SELECT 1`.
    /// Work through one replica of a shard reaches the others through the replication: a
    /// partition dropped or replaced there is dropped or replaced on every replica.
    pub async fn reach(&self, index: usize) -> Result<Client, Unreachable> {
        let mut tried = Vec::new();
        for (url, client) in &self.replicas[index] {
            match super::insert::probe(client, REACH_TIMEOUT).await {
                Ok(()) => return Ok(client.clone()),
                Err(e) => tried.push(format!("{url}: {e}")),
            }
        }
        Err(Unreachable {
            shard: index + 1,
            tried: tried.join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrate::MIGRATIONS;

    fn layout() -> Layout {
        Layout {
            cluster: "tally".into(),
            database: "db".into(),
        }
    }

    #[test]
    fn every_migration_has_a_cluster_form() {
        for m in MIGRATIONS {
            for statement in m.statements() {
                let out =
                    transform(&statement, &layout()).unwrap_or_else(|e| panic!("{}: {e}", m.name));
                assert!(!out.is_empty());
                for s in &out {
                    // Nothing of the single-server engine is left behind.
                    assert!(!s.contains("ENGINE = MergeTree"), "{}: {s}", m.name);
                    assert!(
                        !s.contains("ENGINE = ReplacingMergeTree"),
                        "{}: {s}",
                        m.name
                    );
                }
            }
        }
    }

    #[test]
    fn sharded_tables_become_local_replicated_plus_distributed() {
        let out = transform(
            "CREATE TABLE IF NOT EXISTS events (\n ts DateTime,\n visitor_key UInt64\n) ENGINE = MergeTree\nPARTITION BY toYYYYMMDD(ts)\nORDER BY (site_id, ts)",
            &layout(),
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert!(
            out[0].starts_with("CREATE TABLE IF NOT EXISTS db.events_local ON CLUSTER tally (")
        );
        assert!(out[0].contains(
            "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db/events_local', '{replica}') PARTITION BY toYYYYMMDD(ts)"
        ), "{}", out[0]);
        assert_eq!(
            out[1],
            "CREATE TABLE IF NOT EXISTS db.events ON CLUSTER tally AS db.events_local ENGINE = Distributed(tally, db, events_local, visitor_key)"
        );
    }

    #[test]
    fn whole_tables_share_one_path_and_keep_engine_arguments() {
        let out = transform(
            "CREATE TABLE IF NOT EXISTS users (name String, version UInt64) ENGINE = ReplacingMergeTree(version) ORDER BY name",
            &layout(),
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                "CREATE TABLE IF NOT EXISTS db.users ON CLUSTER tally (name String, version UInt64) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/db/users', '{replica}', version) ORDER BY name"
            ]
        );
    }

    #[test]
    fn renames_rebuild_the_distributed_tables() {
        let out = transform(
            "RENAME TABLE events TO events_before_0003, events_0003 TO events",
            &layout(),
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                "DROP TABLE IF EXISTS db.events ON CLUSTER tally",
                "DROP TABLE IF EXISTS db.events_before_0003 ON CLUSTER tally",
                "DROP TABLE IF EXISTS db.events_0003 ON CLUSTER tally",
                "RENAME TABLE db.events_local TO db.events_before_0003_local, db.events_0003_local TO db.events_local ON CLUSTER tally",
                "CREATE TABLE IF NOT EXISTS db.events_before_0003 ON CLUSTER tally AS db.events_before_0003_local ENGINE = Distributed(tally, db, events_before_0003_local, visitor_key)",
                "CREATE TABLE IF NOT EXISTS db.events ON CLUSTER tally AS db.events_local ENGINE = Distributed(tally, db, events_local, visitor_key)",
            ]
        );
    }

    #[test]
    fn alters_follow_the_placement() {
        let sharded = transform("ALTER TABLE events ADD COLUMN x UInt8", &layout()).unwrap();
        assert_eq!(
            sharded,
            vec![
                "ALTER TABLE db.events_local ON CLUSTER tally ADD COLUMN x UInt8",
                "DROP TABLE IF EXISTS db.events ON CLUSTER tally",
                "CREATE TABLE IF NOT EXISTS db.events ON CLUSTER tally AS db.events_local ENGINE = Distributed(tally, db, events_local, visitor_key)",
            ]
        );
        let whole = transform("ALTER TABLE users ADD COLUMN x UInt8", &layout()).unwrap();
        assert_eq!(whole, vec!["ALTER TABLE db.users ADD COLUMN x UInt8"]);
    }

    #[test]
    fn unknown_statements_are_refused() {
        assert!(transform("CREATE VIEW v AS SELECT 1", &layout()).is_err());
        assert!(transform("RENAME TABLE events TO users", &layout()).is_err());
        assert!(
            transform(
                "CREATE TABLE t (a UInt8) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY a",
                &layout()
            )
            .is_err()
        );
    }

    #[test]
    fn staging_tables_get_a_plain_engine_on_a_cluster() {
        assert_eq!(
            staging_table("s", "visits", true),
            "CREATE TABLE s AS visits_local ENGINE = MergeTree PARTITION BY day ORDER BY (site_id, start, visitor_key)"
        );
        assert!(
            staging_table("s", "agg_daily", true)
                .starts_with("CREATE TABLE s AS agg_daily ENGINE = MergeTree PARTITION BY day")
        );
        assert_eq!(
            staging_table("s", "visits", false),
            "CREATE TABLE s AS visits"
        );
        assert!(plain_engine("events").unwrap().contains("toYYYYMMDD(ts)"));
    }

    #[test]
    fn replica_urls_are_logged_without_credentials() {
        assert_eq!(
            without_credentials("http://tally:s3cret@ch1:8123"),
            "http://ch1:8123/"
        );
        assert_eq!(without_credentials("http://ch1:8123"), "http://ch1:8123/");
    }

    #[test]
    fn sharded_names() {
        assert!(is_sharded("events") && is_sharded("visits") && is_sharded("events_0003"));
        assert!(
            !is_sharded("visitor_secrets") && !is_sharded("agg_daily") && !is_sharded("eventsx")
        );
    }
}
