//! `tally prune [--dry-run]`: one run of the pruner on the configured database, listing each
//! partition it drops (or would drop) with its rows, per table.

use crate::config::Config;
use crate::prune::{Pruner, Report, ttl};

/// Runs the pruner once at the current time (a dry run changes nothing but its record in
/// `prune_runs`) and prints what it dropped. Fails (non-zero exit) when the run had a problem,
/// after printing it: a failed rollup of an expiring day must not pass unnoticed in a cron job.
pub async fn run(cfg: &Config, dry_run: bool) -> anyhow::Result<()> {
    let db = crate::lifecycle::Database::open(cfg).await?;
    let result = async {
        crate::lifecycle::migrate_on(db.url(), cfg).await?;
        let client = crate::store::client(db.url(), &cfg.clickhouse);
        let pruner = Pruner::new(client.clone(), cfg);
        if !dry_run {
            ttl::backstop(&client, pruner.windows(), pruner.shards()).await;
        }
        Ok::<Report, anyhow::Error>(pruner.run(crate::time::now_unix(), dry_run).await)
    }
    .await;
    db.close().await;
    let report = result?;
    print!("{}", render(&report));
    if report.failed() {
        anyhow::bail!(
            "the pruner had {} problem(s): {}",
            report.problems.len(),
            report.problems.join("; ")
        );
    }
    Ok(())
}

/// The report as `tally prune` prints it: one line per partition, then a summary.
pub fn render(report: &Report) -> String {
    let verb = if report.dry_run {
        "would drop"
    } else {
        "dropped"
    };
    let mut out = String::new();
    for (date, sites) in &report.rolled_up {
        out.push_str(&format!(
            "rolled up {date} for site(s) {} before its raw events go\n",
            sites
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let width = report
        .drops
        .iter()
        .map(|d| d.table.len())
        .max()
        .unwrap_or(0);
    for d in &report.drops {
        out.push_str(&format!(
            "{verb} {:<width$}  partition {:<10}  {:>10} rows\n",
            d.table, d.partition, d.rows
        ));
    }
    let tables = {
        let mut t: Vec<&str> = report.drops.iter().map(|d| d.table).collect();
        t.dedup();
        t.len()
    };
    if report.drops.is_empty() {
        out.push_str(if report.dry_run {
            "nothing to drop: every partition is within its retention window\n"
        } else {
            "nothing dropped: every partition is within its retention window\n"
        });
    } else {
        out.push_str(&format!(
            "{verb} {} partition(s) of {tables} table(s), {} rows in all\n",
            report.drops.len(),
            report.rows()
        ));
    }
    for p in &report.problems {
        out.push_str(&format!("PROBLEM: {p}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::Dropped;

    #[test]
    fn lists_each_partition_with_its_rows() {
        let report = Report {
            dry_run: true,
            drops: vec![
                Dropped {
                    table: "events",
                    partition: "20261116".into(),
                    rows: 12,
                },
                Dropped {
                    table: "agg_daily",
                    partition: "2026-05-27".into(),
                    rows: 3,
                },
            ],
            ..Report::default()
        };
        assert_eq!(
            render(&report),
            "would drop events     partition 20261116            12 rows\n\
             would drop agg_daily  partition 2026-05-27           3 rows\n\
             would drop 2 partition(s) of 2 table(s), 15 rows in all\n"
        );
        assert_eq!(
            render(&Report::default()),
            "nothing dropped: every partition is within its retention window\n"
        );
    }
}
