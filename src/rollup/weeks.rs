//! Weeks of top lists: once every day of a week is final (its raw events gone, so the rollup
//! never recomputes it again), the week's `agg_top` rows are summed into one partition of
//! `agg_top_week`, so that a report over months reads a few weekly partitions instead of a
//! hundred daily ones (schema/0007_top_lists.sql). The daily rows stay: a week is only a faster
//! copy of them, written once by `REPLACE PARTITION` (atomic), and the engine reads each week
//! from exactly one of the two tables.

use super::{Rollup, RollupError, STAGING_PREFIX, run_id, sql};
use crate::store::cluster;
use crate::time::local_date;
use chrono::{Datelike, Days, NaiveDate};

/// The Monday of `date`'s week.
pub fn monday(date: NaiveDate) -> NaiveDate {
    date - Days::new(u64::from(date.weekday().num_days_from_monday()))
}

impl Rollup {
    /// Sums every week that is final for every site, still wholly kept, and not yet summed,
    /// into `agg_top_week`; returns the Mondays of the weeks summed.
    pub async fn compact_weeks(&self, now: u32) -> Result<Vec<NaiveDate>, RollupError> {
        let keep_from = self.windows.aggregates_keep_from(now);
        let days = self
            .timed(crate::prune::date_partitions(&self.client, "agg_top"))
            .await?;
        let done = self
            .timed(crate::prune::date_partitions(&self.client, "agg_top_week"))
            .await?;
        let mut weeks: Vec<NaiveDate> = days.into_iter().map(monday).collect();
        weeks.sort_unstable();
        weeks.dedup();
        let mut out = Vec::new();
        for week in weeks {
            let sunday = week + Days::new(6);
            let final_everywhere = self
                .sites
                .iter()
                .all(|s| sunday < local_date(s.tz(), now) && !self.recomputable(s, sunday, now));
            if week < keep_from || done.contains(&week) || !final_everywhere {
                continue;
            }
            self.compact_week(week, sunday, now).await?;
            out.push(week);
        }
        Ok(out)
    }

    async fn compact_week(
        &self,
        week: NaiveDate,
        sunday: NaiveDate,
        now: u32,
    ) -> Result<(), RollupError> {
        let staging = format!("{STAGING_PREFIX}{now}_{:016x}_agg_top_week", run_id());
        let create = cluster::staging_table(&staging, "agg_top_week", self.shards.is_some());
        self.execute(&self.client, &create).await?;
        let result = async {
            self.timed(
                self.client
                    .query(&sql::week_insert(&staging))
                    .bind(week.to_string())
                    .bind(sunday.to_string())
                    .execute(),
            )
            .await?;
            let rows = self
                .swap(&self.client, "agg_top_week", &staging, &week.to_string())
                .await?;
            tracing::info!(%week, rows, "summed a final week of top lists");
            Ok::<(), RollupError>(())
        }
        .await;
        self.drop_staging(&self.client, &staging).await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mondays() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(monday(d("2026-11-26")), d("2026-11-23"));
        assert_eq!(monday(d("2026-11-23")), d("2026-11-23"));
        assert_eq!(monday(d("2026-11-29")), d("2026-11-23"));
        assert_eq!(monday(d("2027-01-01")), d("2026-12-28"));
    }
}
