//! Ordered SQL migrations from `schema/`, each applied once and recorded in `schema_migrations`.

use clickhouse::Row;
use serde::Deserialize;

use super::Client;
use super::cluster::{self, Layout};

/// The migrations, in order of ascending version. The files are compiled in so the binary is all
/// a deployment needs; a test checks that every file in `schema/` is listed here. Each is applied
/// once, by version, whatever was applied before it: a version may be missing from the list
/// while it is being written elsewhere, as long as the later ones do not depend on it.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_events.sql",
        sql: include_str!("../../schema/0001_events.sql"),
    },
    Migration {
        version: 2,
        name: "0002_visitor_secrets.sql",
        sql: include_str!("../../schema/0002_visitor_secrets.sql"),
    },
    Migration {
        version: 3,
        name: "0003_events_utc_kinds.sql",
        sql: include_str!("../../schema/0003_events_utc_kinds.sql"),
    },
    Migration {
        version: 4,
        name: "0004_zone_secrets.sql",
        sql: include_str!("../../schema/0004_zone_secrets.sql"),
    },
    Migration {
        version: 5,
        name: "0005_reports.sql",
        sql: include_str!("../../schema/0005_reports.sql"),
    },
    Migration {
        version: 6,
        name: "0006_api_keys.sql",
        sql: include_str!("../../schema/0006_api_keys.sql"),
    },
    Migration {
        version: 7,
        name: "0007_top_lists.sql",
        sql: include_str!("../../schema/0007_top_lists.sql"),
    },
    Migration {
        version: 8,
        name: "0008_accounts.sql",
        sql: include_str!("../../schema/0008_accounts.sql"),
    },
    Migration {
        version: 9,
        name: "0009_prune_runs.sql",
        sql: include_str!("../../schema/0009_prune_runs.sql"),
    },
    Migration {
        version: 10,
        name: "0010_event_props.sql",
        sql: include_str!("../../schema/0010_event_props.sql"),
    },
    Migration {
        version: 11,
        name: "0011_visit_props.sql",
        sql: include_str!("../../schema/0011_visit_props.sql"),
    },
    Migration {
        version: 12,
        name: "0012_spool_batch.sql",
        sql: include_str!("../../schema/0012_spool_batch.sql"),
    },
];

/// One schema file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number; applied in ascending order.
    pub version: u32,
    /// File name in `schema/`.
    pub name: &'static str,
    /// Its statements, separated by `;` at the end of a line.
    pub sql: &'static str,
}

impl Migration {
    /// The statements of this file, comments removed.
    pub fn statements(&self) -> impl Iterator<Item = String> + '_ {
        split_statements(self.sql)
    }
}

/// Splits SQL text into statements at a `;` ending a line; `--` comment lines are dropped.
pub fn split_statements(sql: &str) -> impl Iterator<Item = String> + '_ {
    let text: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .map(|l| format!("{l}\n"))
        .collect();
    text.split(";\n")
        .map(|s| s.trim().trim_end_matches(';').trim().to_string())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .into_iter()
}

/// Whether `statement` only adds columns (`ALTER TABLE .. ADD COLUMN ..`).
fn adds_column(statement: &str) -> bool {
    let s = statement.to_ascii_uppercase();
    s.starts_with("ALTER TABLE") && s.contains(" ADD COLUMN ") && !s.contains(" DROP ")
}

/// ClickHouse's answer to adding a column that exists (code 44 on 18.16, 15 later; the text is
/// the same in both).
fn already_exists(e: &clickhouse::error::Error) -> bool {
    e.to_string().contains("already exists")
}

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime
) ENGINE = MergeTree ORDER BY version";

/// Whether `db` has the ledger of applied migrations (on this node).
async fn ledger_exists(server: &Client, db: &str) -> Result<bool, clickhouse::error::Error> {
    #[derive(Row, Deserialize)]
    struct Count {
        n: u64,
    }
    Ok(server
        .query("SELECT count() AS n FROM system.tables WHERE database = ? AND name = 'schema_migrations'")
        .bind(db)
        .fetch_one::<Count>()
        .await?
        .n
        > 0)
}

#[derive(Row, Deserialize)]
struct Applied {
    version: u32,
}

#[derive(Row, serde::Serialize)]
struct Record<'a> {
    version: u32,
    name: &'a str,
    applied_at: u32,
}

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// ClickHouse refused a statement or could not be reached.
    #[error(transparent)]
    ClickHouse(#[from] clickhouse::error::Error),
    /// A schema file holds a statement with no cluster form.
    #[error(transparent)]
    NoClusterForm(#[from] cluster::Unsupported),
}

/// The statements that apply `statement` on `layout` (on one server: itself).
fn placed(statement: &str, layout: Option<&Layout>) -> Result<Vec<String>, cluster::Unsupported> {
    match layout {
        None => Ok(vec![statement.to_string()]),
        Some(l) => cluster::transform(statement, l),
    }
}

/// Every statement the migrations send to a fresh installation on `layout`, in order: what
/// `tally migrate --print` shows and the cluster tests hand to the check on current ClickHouse.
pub fn all_statements(layout: Option<&Layout>) -> Result<Vec<String>, cluster::Unsupported> {
    let mut out = Vec::new();
    if let Some(l) = layout {
        out.push(l.create_database());
    }
    out.extend(placed(LEDGER, layout)?);
    for m in MIGRATIONS {
        for statement in m.statements() {
            out.extend(placed(&statement, layout)?);
        }
    }
    Ok(out)
}

/// Creates the database if needed and applies the migrations not yet recorded.
/// Returns the names of those applied now (empty on a second run).
///
/// `server` has no database selected; `db` is the configured one (validated as a plain name).
/// With a `layout`, every statement takes its cluster form (`store::cluster`): replicated
/// tables `ON CLUSTER`, the sharded ones behind `Distributed` tables.
pub async fn migrate(
    server: &Client,
    db_client: &Client,
    db: &str,
    layout: Option<&Layout>,
) -> Result<Vec<&'static str>, MigrateError> {
    // Only a first run creates the database and the ledger: on a cluster these are
    // `ON CLUSTER` statements, which wait for every node, and a collector must start while a
    // replica is down.
    if !ledger_exists(server, db).await? {
        let create_db = match layout {
            Some(l) => l.create_database(),
            None => format!("CREATE DATABASE IF NOT EXISTS {db}"),
        };
        server.query_raw(&create_db).execute().await?;
        for statement in placed(LEDGER, layout)? {
            db_client.query_raw(&statement).execute().await?;
        }
    }
    let done: Vec<u32> = db_client
        .query("SELECT version FROM schema_migrations")
        .fetch_all::<Applied>()
        .await?
        .into_iter()
        .map(|a| a.version)
        .collect();
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        let mut statements = Vec::new();
        for statement in m.statements() {
            statements.extend(placed(&statement, layout)?);
        }
        for statement in statements {
            match db_client.query_raw(&statement).execute().await {
                // 18.16 has no `ADD COLUMN IF NOT EXISTS`: a column added by an interrupted
                // earlier run of this migration is what the statement would make.
                Err(e) if adds_column(&statement) && already_exists(&e) => {
                    tracing::info!(
                        migration = m.name,
                        "columns already added by an earlier run"
                    );
                }
                other => other?,
            }
        }
        let mut insert = db_client.insert::<Record>("schema_migrations").await?;
        insert
            .write(&Record {
                version: m.version,
                name: m.name,
                applied_at: crate::time::now_unix(),
            })
            .await?;
        insert.end().await?;
        tracing::info!(migration = m.name, "applied schema migration");
        applied.push(m.name);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_file_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/schema");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(files, listed);
        assert_eq!(MIGRATIONS[0].version, 1);
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version, "{}", pair[1].name);
        }
        for m in MIGRATIONS {
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }

    #[test]
    fn statements_are_split_at_line_end_semicolons() {
        let sql = "-- a comment; with semicolon\nCREATE TABLE a (x String DEFAULT ';')\nENGINE = Log;\n\nCREATE TABLE b (y UInt8) ENGINE = Log;";
        let s: Vec<String> = split_statements(sql).collect();
        assert_eq!(s.len(), 2);
        assert!(s[0].starts_with("CREATE TABLE a") && s[0].ends_with("ENGINE = Log"));
        assert_eq!(s[1], "CREATE TABLE b (y UInt8) ENGINE = Log");
    }
}
