//! Breakdowns from the top lists (`agg_top`, `agg_top_week`; schema/0007_top_lists.sql): the
//! first rows of a breakdown by one stored dimension, proven complete without reading the long
//! tail of `agg_breakdown`.
//!
//! Per site, day and dimension the rollup lists the values with the most visitors, with their
//! exact sums, and summarises the rest of the day by its largest visitors, visits, page views
//! and events. Summed over a range (and over final weeks, summed once), a value listed on every
//! day that had a rest is known exactly. One that was not can have had at most the rest's
//! largest figure on each of those days: its sum plus the sum of those largest figures is an
//! upper bound for it, and for a value never listed the sum alone is. When the last row asked
//! for, among the exactly known values in the requested order, beats every such bound on the
//! metric ordered by, no other value can be among the rows asked for, and those rows are
//! answered exactly. Otherwise (an order by a rate, a page far down the list, a flat tail) the
//! engine reads `agg_breakdown` as before. Nothing here estimates.

use std::cmp::Ordering;

use chrono::{Days, NaiveDate};
use clickhouse::Row;
use serde::Deserialize;

use super::aggregates::{AggregatePlan, OrderKey, Shape};
use super::binds::{Binds, Params, Value};
use super::sums::Group;
use crate::rollup::dimensions::Dimension;
use crate::rollup::weeks::monday;

/// One summed row of the top lists: a listed value, or (`listed = 0`, empty value) the rests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Row, Deserialize)]
pub struct TopRow {
    /// 1 for a listed value, 0 for the rests.
    pub listed: u8,
    /// The stored value.
    pub value: String,
    /// Its sums over the days it was listed.
    pub visitors: u64,
    /// Visits.
    pub visits: u64,
    /// Page views.
    pub pageviews: u64,
    /// Events.
    pub events: u64,
    /// Bounces.
    pub bounces: u64,
    /// Duration, seconds.
    pub duration: u64,
    /// Listed value: the days with a rest on which it was listed. Rests: the days with a rest.
    pub tailed: u64,
    /// Rests: the sum over days of the largest visitors in a day's rest.
    pub tail_visitors: u64,
    /// Rests: the same for visits.
    pub tail_visits: u64,
    /// Rests: the same for page views.
    pub tail_pageviews: u64,
    /// Rests: the same for events.
    pub tail_events: u64,
}

/// The stored dimension whose top lists answer `shape`, if they may: the groups are whole
/// stored values, no filter, no time buckets.
pub fn applies(plan: &AggregatePlan, shape: &Shape<'_>) -> Option<&'static Dimension> {
    if shape.filter.is_some() || shape.grain.is_some() {
        return None;
    }
    plan.whole_value()
}

/// The weeks of `[first, last]` to read from `agg_top_week`: those wholly inside the range,
/// summed (`summed`), and whose Monday is after `keep_from` (the first day of the aggregates
/// kept), so that the pruner cannot drop one while it is read.
pub fn weeks_inside(
    first: NaiveDate,
    last: NaiveDate,
    keep_from: NaiveDate,
    summed: &[NaiveDate],
) -> Vec<NaiveDate> {
    let mut weeks: Vec<NaiveDate> = summed
        .iter()
        .copied()
        .filter(|&w| monday(w) == w && w >= first && w + Days::new(6) <= last && w > keep_from)
        .collect();
    weeks.sort_unstable();
    weeks.dedup();
    weeks
}

/// The days of `[first, last]` outside `weeks` (sorted), as inclusive ranges.
pub fn days_outside(
    first: NaiveDate,
    last: NaiveDate,
    weeks: &[NaiveDate],
) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut from = first;
    for &w in weeks {
        if w > from {
            out.push((from, w - Days::new(1)));
        }
        from = w + Days::new(7);
    }
    if from <= last {
        out.push((from, last));
    }
    out
}

/// The statement summing the top lists of `stored` for `shape`: `weeks` from `agg_top_week`,
/// every other day from `agg_top`; one row per listed value and one (`listed = 0`) of the rests.
pub fn sql(shape: &Shape<'_>, stored: &Dimension, weeks: &[NaiveDate]) -> (String, Binds) {
    let mut p = Params::default();
    let site = p.add(Value::U32(shape.site_id));
    let dimension = p.add(Value::Str(stored.name.into()));
    const COLUMNS: &str = "listed, value, visitors, visits, pageviews, events, bounces, duration, \
         tailed, tail_visitors, tail_visits, tail_pageviews, tail_events";
    let mut branches = Vec::new();
    if !weeks.is_empty() {
        let list: Vec<String> = weeks
            .iter()
            .map(|w| format!("toDate({})", p.add(Value::Str(w.to_string()))))
            .collect();
        branches.push(format!(
            "SELECT {COLUMNS} FROM agg_top_week WHERE site_id = {site} AND dimension = {dimension} \
             AND week IN ({})",
            list.join(", ")
        ));
    }
    let ranges: Vec<String> = days_outside(shape.first, shape.last, weeks)
        .into_iter()
        .map(|(a, b)| {
            format!(
                "(day >= toDate({}) AND day <= toDate({}))",
                p.add(Value::Str(a.to_string())),
                p.add(Value::Str(b.to_string()))
            )
        })
        .collect();
    if !ranges.is_empty() {
        branches.push(format!(
            "SELECT {COLUMNS} FROM agg_top WHERE site_id = {site} AND dimension = {dimension} \
             AND ({})",
            ranges.join(" OR ")
        ));
    }
    let sql = format!(
        "SELECT listed, value, sum(visitors) AS visitors, sum(visits) AS visits, \
         sum(pageviews) AS pageviews, sum(events) AS events, sum(bounces) AS bounces, \
         sum(duration) AS duration, sum(tailed) AS tailed, sum(tail_visitors) AS tail_visitors, \
         sum(tail_visits) AS tail_visits, sum(tail_pageviews) AS tail_pageviews, \
         sum(tail_events) AS tail_events \
         FROM ({}) GROUP BY listed, value",
        branches.join(" UNION ALL ")
    );
    p.finish(&sql)
}

/// The rows `shape` asks for, if the top lists prove them: every group there is, when no day
/// had a rest; else the first rows by a metric that adds up, when their last beats every bound.
pub fn answer(rows: &[TopRow], shape: &Shape<'_>) -> Option<Vec<Group>> {
    let rests = rows.iter().find(|r| r.listed == 0);
    let tail_days = rests.map_or(0, |r| r.tailed);
    let mut known: Vec<Group> = rows
        .iter()
        .filter(|r| r.listed == 1 && r.tailed == tail_days)
        .map(group)
        .collect();
    known.sort_by(|a, b| compare(a, b, &shape.order));
    let from = usize::try_from(shape.offset).ok()?;
    let page = |known: Vec<Group>| -> Vec<Group> {
        let rest = known.into_iter().skip(from);
        match shape.limit {
            Some(n) => rest
                .take(usize::try_from(n).unwrap_or(usize::MAX))
                .collect(),
            None => rest.collect(),
        }
    };
    let Some(rests) = rests else {
        // Every value of every day was listed: the lists are the whole breakdown.
        return Some(page(known));
    };
    // Values may be missing: only the first rows by a sum can be vouched for.
    let (OrderKey::Metric(m), true) = shape.order.first()? else {
        return None;
    };
    let of = adds_up(m)?;
    let end = from.checked_add(usize::try_from(shape.limit?).ok()?)?;
    let last = known.get(end.checked_sub(1)?)?;
    let floor = of(last);
    let bound = tail_of(m, rests)?;
    let beaten = |v: u64| v < floor;
    let unknown_lose = rows
        .iter()
        .filter(|r| r.listed == 1 && r.tailed != tail_days)
        .all(|r| beaten(of(&group(r)).saturating_add(bound)));
    (beaten(bound) && unknown_lose).then(|| page(known))
}

/// The groups of exactly `values` (those with figures; a value absent everywhere has no group),
/// if the lists know each of them: listed on every day with a rest, or never listed when no day
/// had one. For a comparison period, whose rows are matched to this period's by value.
pub fn answer_for(rows: &[TopRow], values: &[&str]) -> Option<Vec<Group>> {
    let tail_days = rows.iter().find(|r| r.listed == 0).map_or(0, |r| r.tailed);
    let listed: std::collections::HashMap<&str, &TopRow> = rows
        .iter()
        .filter(|r| r.listed == 1)
        .map(|r| (r.value.as_str(), r))
        .collect();
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match listed.get(v) {
            Some(r) if r.tailed == tail_days => out.push(group(r)),
            None if tail_days == 0 => {}
            // Missing from a list on a day with a rest: it may have been in the rest.
            _ => return None,
        }
    }
    Some(out)
}

/// How many groups the whole breakdown has, if the lists hold every value (no day had a rest).
pub fn count(rows: &[TopRow]) -> Option<u64> {
    if rows.iter().any(|r| r.listed == 0) {
        return None;
    }
    u64::try_from(rows.len()).ok()
}

fn group(r: &TopRow) -> Group {
    Group {
        t: String::new(),
        value: r.value.clone(),
        visitors: r.visitors,
        visits: r.visits,
        pageviews: r.pageviews,
        events: r.events,
        bounces: r.bounces,
        duration: r.duration,
        n: 1,
    }
}

/// The sum a metric orders by, when it is one of the four whose largest rest is kept.
fn adds_up(metric: &str) -> Option<fn(&Group) -> u64> {
    Some(match metric {
        "visitors" | "percentage" | "conversion_rate" => |g| g.visitors,
        "visits" => |g| g.visits,
        "pageviews" => |g| g.pageviews,
        "events" => |g| g.events,
        _ => return None,
    })
}

fn tail_of(metric: &str, rests: &TopRow) -> Option<u64> {
    Some(match metric {
        "visitors" | "percentage" | "conversion_rate" => rests.tail_visitors,
        "visits" => rests.tail_visits,
        "pageviews" => rests.tail_pageviews,
        "events" => rests.tail_events,
        _ => return None,
    })
}

/// The order of [`super::aggregates::page_sql`], in Rust: the requested keys, then the value.
fn compare(a: &Group, b: &Group, order: &[(OrderKey, bool)]) -> Ordering {
    for (key, desc) in order {
        let o = match key {
            OrderKey::Metric(m) => sort_value(m, a).total_cmp(&sort_value(m, b)),
            OrderKey::Dimension(_) => a.value.as_bytes().cmp(b.value.as_bytes()),
            OrderKey::Time => Ordering::Equal,
        };
        let o = if *desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.value.as_bytes().cmp(b.value.as_bytes())
}

/// What `sums::order_expr` computes in SQL, for one group.
fn sort_value(metric: &str, g: &Group) -> f64 {
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    match metric {
        "visits" => g.visits as f64,
        "pageviews" => g.pageviews as f64,
        "events" => g.events as f64,
        "views_per_visit" => ratio(g.pageviews, g.visits),
        "bounce_rate" => ratio(g.bounces, g.visits),
        "visit_duration" => ratio(g.duration, g.visits),
        _ => g.visitors as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn listed(value: &str, visitors: u64, tailed: u64) -> TopRow {
        TopRow {
            listed: 1,
            value: value.into(),
            visitors,
            visits: visitors,
            pageviews: 2 * visitors,
            events: 2 * visitors,
            tailed,
            ..TopRow::default()
        }
    }

    fn rests(days: u64, visitors: u64) -> TopRow {
        TopRow {
            listed: 0,
            tailed: days,
            tail_visitors: visitors,
            tail_visits: visitors,
            tail_pageviews: 2 * visitors,
            tail_events: 2 * visitors,
            ..TopRow::default()
        }
    }

    fn shape(order: &str, desc: bool, limit: u64, offset: u64) -> Shape<'static> {
        Shape {
            site_id: 1,
            first: d("2026-01-01"),
            last: d("2026-06-29"),
            grain: None,
            dims: vec!["event:page"],
            filter: None,
            order: vec![(OrderKey::Metric(order.into()), desc)],
            limit: Some(limit),
            offset,
            prop_key: None,
        }
    }

    fn values(groups: &[Group]) -> Vec<&str> {
        groups.iter().map(|g| g.value.as_str()).collect()
    }

    #[test]
    fn without_rests_the_lists_are_everything_in_any_order() {
        let rows = vec![listed("/b", 5, 0), listed("/a", 5, 0), listed("/c", 9, 0)];
        let got = answer(&rows, &shape("visitors", true, 10, 0)).unwrap();
        assert_eq!(values(&got), ["/c", "/a", "/b"]);
        let got = answer(&rows, &shape("bounce_rate", false, 2, 1)).unwrap();
        assert_eq!(values(&got), ["/b", "/c"]);
    }

    #[test]
    fn the_last_row_must_beat_every_bound() {
        // 3 days had a rest of at most 10 visitors each: a value never listed has at most 30.
        let rows = vec![
            listed("/a", 100, 3),
            listed("/b", 31, 3),
            listed("/c", 30, 3),
            rests(3, 30),
        ];
        let got = answer(&rows, &shape("visitors", true, 2, 0)).unwrap();
        assert_eq!(values(&got), ["/a", "/b"]);
        // The third row ties with what an unlisted value may have had: not proven.
        assert_eq!(answer(&rows, &shape("visitors", true, 3, 0)), None);
        // Not enough known rows for the page.
        assert_eq!(answer(&rows, &shape("visitors", true, 2, 2)), None);
    }

    #[test]
    fn a_value_missing_from_some_lists_is_bounded_by_its_sum_and_the_rests() {
        // /x was listed on 2 of the 3 days with a rest: 80 + at most 30 = 110 > 100.
        let mut rows = vec![listed("/a", 100, 3), listed("/x", 80, 2), rests(3, 30)];
        assert_eq!(answer(&rows, &shape("visitors", true, 1, 0)), None);
        rows[1].visitors = 60;
        let got = answer(&rows, &shape("visitors", true, 1, 0)).unwrap();
        assert_eq!(values(&got), ["/a"]);
        // Known values only: /x is not among them, whatever its partial sum.
        assert!(got.iter().all(|g| g.n == 1));
    }

    #[test]
    fn only_descending_sums_can_be_proven() {
        let rows = vec![listed("/a", 100, 1), listed("/b", 50, 1), rests(1, 1)];
        assert!(answer(&rows, &shape("pageviews", true, 1, 0)).is_some());
        assert!(answer(&rows, &shape("events", true, 1, 0)).is_some());
        assert_eq!(answer(&rows, &shape("visitors", false, 1, 0)), None);
        assert_eq!(answer(&rows, &shape("bounce_rate", true, 1, 0)), None);
        let mut all = shape("visitors", true, 1, 0);
        all.limit = None;
        assert_eq!(answer(&rows, &all), None);
    }

    #[test]
    fn ties_are_ordered_by_value_as_clickhouse_does() {
        let rows = vec![listed("/b", 7, 0), listed("/B", 7, 0), listed("/a", 7, 0)];
        let got = answer(&rows, &shape("visitors", true, 3, 0)).unwrap();
        assert_eq!(values(&got), ["/B", "/a", "/b"]);
    }

    #[test]
    fn rows_are_counted_only_without_rests() {
        assert_eq!(count(&[listed("/a", 1, 0), listed("/b", 2, 0)]), Some(2));
        assert_eq!(count(&[listed("/a", 1, 1), rests(1, 1)]), None);
        assert_eq!(count(&[]), Some(0));
    }

    #[test]
    fn a_comparison_needs_every_value_known() {
        let rows = vec![listed("/a", 100, 2), listed("/b", 50, 1), rests(2, 5)];
        let got = answer_for(&rows, &["/a"]).unwrap();
        assert_eq!(values(&got), ["/a"]);
        // /b missed a list on a day with a rest; /c was in no list.
        assert_eq!(answer_for(&rows, &["/a", "/b"]), None);
        assert_eq!(answer_for(&rows, &["/c"]), None);
        // Without rests a value in no list was not there at all.
        let complete = vec![listed("/a", 100, 0)];
        let got = answer_for(&complete, &["/c", "/a"]).unwrap();
        assert_eq!(values(&got), ["/a"]);
    }

    #[test]
    fn weeks_and_the_days_around_them() {
        let summed = [
            d("2026-11-02"),
            d("2026-11-09"),
            d("2026-11-16"),
            d("2026-10-26"),
        ];
        // 2026-11-01 is a Sunday; the week of 2026-10-26 is not wholly inside.
        let weeks = weeks_inside(d("2026-10-27"), d("2026-11-21"), d("2026-06-01"), &summed);
        assert_eq!(weeks, [d("2026-11-02"), d("2026-11-09")]);
        assert_eq!(
            days_outside(d("2026-10-27"), d("2026-11-21"), &weeks),
            [
                (d("2026-10-27"), d("2026-11-01")),
                (d("2026-11-16"), d("2026-11-21"))
            ]
        );
        // A week whose Monday is the first kept day may be dropped while read: not used.
        assert!(
            weeks_inside(d("2026-11-02"), d("2026-11-08"), d("2026-11-02"), &summed).is_empty()
        );
        let all = [d("2026-11-02")];
        assert!(days_outside(d("2026-11-02"), d("2026-11-08"), &all).is_empty());
    }
}
