//! Answers from the daily aggregates (`agg_daily`, `agg_hourly`, `agg_breakdown`), which live
//! 180 days: which questions they answer exactly, and the SQL that does.
//!
//! The aggregates hold, per site and day, the six sums overall, per hour, and per value of one
//! dimension (or of a browser or system with its version). So they answer a question whose
//! dimensions and filters all concern one stored dimension, grouped by time or not. Merging
//! rows is exact for page views and events always (each action is counted under one value),
//! for visits, bounces and durations when the dimension has one value per visit, and for
//! visitors never (someone who read two of the pages is one visitor of that day, but in two
//! rows): the engine then refuses rather than add them up. That is checked on the answer itself
//! (`n`, the rows of one day merged into a group), so a filter that happens to match one value
//! a day is answered.

use chrono::NaiveDate;

use super::binds::{Binds, Params, Value};
use super::date_range::TimeGrain;
use super::filter::{Condition, Filter, Operator};
use super::sums::{Group, order_expr};
use crate::rollup::dimensions::{self, Dimension, Values};

/// One way to order the rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderKey {
    /// By a metric (its API name).
    Metric(String),
    /// By the value of a dimension (its API name).
    Dimension(String),
    /// By the time bucket.
    Time,
}

/// A question in the engine's terms, whatever the source that answers it.
#[derive(Debug, Clone)]
pub struct Shape<'a> {
    /// The site.
    pub site_id: u32,
    /// First local day, included.
    pub first: NaiveDate,
    /// Last local day, included.
    pub last: NaiveDate,
    /// Grouping by time, if any.
    pub grain: Option<TimeGrain>,
    /// The other dimensions, by API name, in the request's order.
    pub dims: Vec<&'static str>,
    /// The filter.
    pub filter: Option<&'a Filter>,
    /// Ordering, most significant first, `true` = descending.
    pub order: Vec<(OrderKey, bool)>,
    /// Rows at most (`None`: all).
    pub limit: Option<u64>,
    /// Rows skipped.
    pub offset: u64,
    /// The custom property's key, when a dimension or filter is `event:props:KEY`.
    pub prop_key: Option<&'a str>,
}

/// Where the answer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Table {
    /// `agg_daily`.
    Daily,
    /// `agg_hourly`.
    Hourly,
    /// `agg_breakdown` rows of this stored dimension.
    Breakdown(&'static Dimension),
}

/// How the aggregates answer a question, if they can.
#[derive(Debug, Clone)]
pub struct AggregatePlan {
    /// The table.
    pub table: Table,
    /// For each requested dimension, its part (0 or 1) of the stored value.
    pub parts: Vec<usize>,
}

/// Why the aggregates cannot answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFromAggregates(pub String);

/// Finds how the aggregates answer `shape`, or says why they cannot.
pub fn plan(shape: &Shape<'_>) -> Result<AggregatePlan, NotFromAggregates> {
    let mut wanted: Vec<&str> = shape.dims.clone();
    if let Some(f) = shape.filter {
        for c in f.conditions() {
            let name = c.dimension.as_str();
            if name.ends_with("_name") {
                return Err(NotFromAggregates(format!(
                    "filter on {} (the stored code or name) instead of {name}",
                    name.trim_end_matches("_name")
                )));
            }
            if !wanted.contains(&name) {
                wanted.push(name);
            }
        }
    }
    if wanted.is_empty() {
        return Ok(AggregatePlan {
            table: if shape.grain == Some(TimeGrain::Hour) {
                Table::Hourly
            } else {
                Table::Daily
            },
            parts: Vec::new(),
        });
    }
    if shape.grain == Some(TimeGrain::Hour) {
        return Err(NotFromAggregates(
            "hourly figures are aggregated for the whole site only, not per dimension or filter"
                .into(),
        ));
    }
    // The stored dimension with the fewest parts that holds every dimension asked about.
    let stored = dimensions::DIMENSIONS
        .iter()
        .chain([&dimensions::PROPS])
        .filter(|d| wanted.iter().all(|w| d.name.split('+').any(|p| p == *w)))
        .min_by_key(|d| d.name.split('+').count())
        .ok_or_else(|| {
            NotFromAggregates(format!(
                "the daily aggregates hold one dimension at a time, and this question combines {}",
                wanted.join(", ")
            ))
        })?;
    let parts = shape
        .dims
        .iter()
        .map(|d| part_of(stored, d))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| NotFromAggregates("dimension not stored".into()))?;
    Ok(AggregatePlan {
        table: Table::Breakdown(stored),
        parts,
    })
}

fn part_of(stored: &Dimension, name: &str) -> Option<usize> {
    stored.name.split('+').position(|p| p == name)
}

/// The SQL expression of part `i` of a stored value.
fn part_sql(stored: &Dimension, i: usize) -> String {
    if stored.name.contains('+') {
        format!("splitByChar('\\x1f', value)[{}]", i + 1)
    } else {
        "value".into()
    }
}

impl AggregatePlan {
    /// The stored dimension, when the groups are its whole stored values (not a part of a pair,
    /// and not merged by a filter without a breakdown by it): then a day has one row per group.
    pub fn whole_value(&self) -> Option<&'static Dimension> {
        match self.table {
            Table::Breakdown(stored)
                if self.parts.len() == stored.name.split('+').count()
                    && self.parts.iter().enumerate().all(|(i, &p)| i == p) =>
            {
                Some(stored)
            }
            _ => None,
        }
    }

    /// The grouped `SELECT` answering `shape` (columns as [`Group`]), and its binds.
    /// With `page = false` it has no `ORDER BY`/`LIMIT`, to count the rows.
    pub fn sql(&self, shape: &Shape<'_>, page: bool) -> Result<(String, Binds), NotFromAggregates> {
        let mut p = Params::default();
        let (table, day_cols) = match self.table {
            Table::Daily => ("agg_daily".to_string(), "day"),
            Table::Hourly => ("agg_hourly".to_string(), "day, hour"),
            Table::Breakdown(stored) if stored.name == dimensions::PROPS.name => {
                (props_rows(shape, &mut p)?, "day")
            }
            Table::Breakdown(_) => ("agg_breakdown".to_string(), "day"),
        };
        let value_inner = match self.table {
            Table::Breakdown(stored) => {
                let parts: Vec<String> = self.parts.iter().map(|&i| part_sql(stored, i)).collect();
                group_value(&parts)
            }
            _ => "''".into(),
        };
        let props = matches!(self.table, Table::Breakdown(s) if s.name == dimensions::PROPS.name);
        // The rows of a custom property are chosen inside their subquery ([`props_rows`]): a
        // condition on its columns outside is pushed into it by 18.16, where `dimension` is the
        // table's own column and no longer the subquery's.
        let mut wheres = vec![if props {
            "1".to_string()
        } else {
            format!(
                "site_id = {} AND day >= toDate({}) AND day <= toDate({})",
                p.add(Value::U32(shape.site_id)),
                p.add(Value::Str(shape.first.to_string())),
                p.add(Value::Str(shape.last.to_string()))
            )
        }];
        if let Table::Breakdown(stored) = self.table {
            if !props {
                wheres.push(format!(
                    "dimension = {}",
                    p.add(Value::Str(stored.name.into()))
                ));
            }
            if let Some(f) = shape.filter {
                wheres.push(filter_sql(
                    f,
                    &mut |c, p| {
                        let part = part_of(stored, c.dimension.as_str()).ok_or_else(|| {
                            NotFromAggregates(format!(
                                "no stored values for {}",
                                c.dimension.as_str()
                            ))
                        })?;
                        Ok(condition_sql(c, &part_sql(stored, part), p))
                    },
                    &mut p,
                )?);
            }
        }
        let label = time_label(shape, &mut p);
        // Each day has one stored row per hour, or per stored value: grouped by the whole
        // value, a group of a day is that one row, and the rows are summed in one pass. Only a
        // group merging values (a filter without a breakdown by it, a version without its
        // browser) counts its rows per day, to tell whether its visitors add up.
        let one_row_a_day = match self.table {
            Table::Daily | Table::Hourly => true,
            Table::Breakdown(_) => self.whole_value().is_some(),
        };
        let mut sql = if one_row_a_day {
            let value_inner = match self.table {
                Table::Breakdown(_) => "value".to_string(),
                _ => value_inner,
            };
            format!(
                "SELECT {label} AS t, {value_inner} AS value, sum(visitors) AS visitors, \
                 sum(visits) AS visits, sum(pageviews) AS pageviews, sum(events) AS events, \
                 sum(bounces) AS bounces, sum(duration) AS duration, toUInt64(1) AS n \
                 FROM {table} WHERE {} GROUP BY t, value",
                wheres.join(" AND ")
            )
        } else {
            format!(
                "SELECT {label} AS t, gv AS value, sum(visitors) AS visitors, sum(visits) AS visits, \
                 sum(pageviews) AS pageviews, sum(events) AS events, sum(bounces) AS bounces, \
                 sum(duration) AS duration, max(rows) AS n \
                 FROM (SELECT {day_cols}, {value_inner} AS gv, sum(visitors) AS visitors, \
                 sum(visits) AS visits, sum(pageviews) AS pageviews, sum(events) AS events, \
                 sum(bounces) AS bounces, sum(duration) AS duration, count() AS rows \
                 FROM {table} WHERE {} GROUP BY {day_cols}, gv) \
                 GROUP BY t, value",
                wheres.join(" AND ")
            )
        };
        if page {
            sql.push_str(&page_sql(shape, &mut p));
        }
        Ok(p.finish(&sql))
    }

    /// Which of `metrics` the groups cannot give exactly, merged as they are.
    pub fn inexact<'m>(&self, metrics: &[&'m str], groups: &[Group]) -> Vec<&'m str> {
        if groups.iter().all(|g| g.n <= 1) {
            return Vec::new();
        }
        let per_visit = matches!(
            self.table,
            Table::Breakdown(Dimension {
                values: Values::PerVisit(_),
                ..
            })
        );
        metrics
            .iter()
            .copied()
            .filter(|m| match *m {
                "pageviews" | "events" => false,
                "visits" | "bounce_rate" | "visit_duration" | "views_per_visit" => !per_visit,
                _ => true,
            })
            .collect()
    }
}

/// The stored rows of the query's custom property over the query's site and days, as a table
/// (`day`, `value` and the six sums):
/// its `event:props:KEY` rows, and on each day without them the day's `event:props` row of
/// every visit with an action as its value `''` (`(none)`): no action had the key that day, so
/// every action counts under `(none)`. A day whose keys were cut
/// ([`crate::rollup::sql::PROP_KEYS_LEFT_OUT`]) and that has no rows of the key is refused
/// before this is read ([`props_refusal_sql`]).
fn props_rows(shape: &Shape<'_>, p: &mut Params) -> Result<String, NotFromAggregates> {
    let key = shape
        .prop_key
        .ok_or_else(|| NotFromAggregates("no custom property named".into()))?;
    let range = format!(
        "site_id = {} AND day >= toDate({}) AND day <= toDate({})",
        p.add(Value::U32(shape.site_id)),
        p.add(Value::Str(shape.first.to_string())),
        p.add(Value::Str(shape.last.to_string()))
    );
    let dimension = p.add(Value::Str(format!("{}:{key}", dimensions::PROPS.name)));
    let props = p.add(Value::Str(dimensions::PROPS.name.into()));
    let all = p.add(Value::Str(crate::rollup::sql::PROPS_ALL_ACTIONS.into()));
    Ok(format!(
        "(SELECT day, value, visitors, visits, pageviews, events, bounces, duration \
         FROM agg_breakdown WHERE {range} AND dimension = {dimension} \
         UNION ALL \
         SELECT day, '' AS value, visitors, visits, pageviews, events, bounces, duration \
         FROM agg_breakdown WHERE {range} AND dimension = {props} AND value = {all} \
         AND day NOT IN (SELECT day FROM agg_breakdown WHERE {range} AND dimension = {dimension}))"
    ))
}

/// `SELECT` of the first day of `shape` (as `first_day`, a string) whose custom property keys were
/// cut by the rollup without the query's key among those kept: no exact answer for it comes
/// from the aggregates. Binds included.
pub fn props_refusal_sql(shape: &Shape<'_>) -> Option<(String, Binds)> {
    let key = shape.prop_key?;
    let mut p = Params::default();
    let range = format!(
        "site_id = {} AND day >= toDate({}) AND day <= toDate({})",
        p.add(Value::U32(shape.site_id)),
        p.add(Value::Str(shape.first.to_string())),
        p.add(Value::Str(shape.last.to_string()))
    );
    let sql = format!(
        "SELECT toString(day) AS first_day FROM agg_breakdown WHERE {range} AND dimension = {} AND value = {} \
         AND day NOT IN (SELECT day FROM agg_breakdown WHERE {range} AND dimension = {}) \
         ORDER BY first_day LIMIT 1",
        p.add(Value::Str(dimensions::PROPS.name.into())),
        p.add(Value::Str(crate::rollup::sql::PROP_KEYS_LEFT_OUT.into())),
        p.add(Value::Str(format!("{}:{key}", dimensions::PROPS.name))),
    );
    Some(p.finish(&sql))
}

/// The value a group is keyed by: one expression, or several joined by the pair separator
/// (split again by [`super::labels::dimension_values`]).
pub fn group_value(parts: &[String]) -> String {
    match parts.len() {
        0 => "''".to_string(),
        1 => parts[0].clone(),
        _ => format!("concat({})", parts.join(", '\\x1f', ")),
    }
}

/// The label of a group's time bucket, from its `day` (and `hour`) column: weeks and months
/// that began before the range are labelled by the range's first day.
pub fn time_label(shape: &Shape<'_>, p: &mut Params) -> String {
    match shape.grain {
        None => "''".to_string(),
        Some(TimeGrain::Hour) => {
            "concat(toString(day), ' ', if(hour < 10, '0', ''), toString(hour), ':00:00')".into()
        }
        Some(TimeGrain::Day) => "toString(day)".into(),
        Some(TimeGrain::Week) => format!(
            "toString(greatest(toMonday(day), toDate({})))",
            p.add(Value::Str(shape.first.to_string()))
        ),
        Some(TimeGrain::Month) => format!(
            "toString(greatest(toStartOfMonth(day), toDate({})))",
            p.add(Value::Str(shape.first.to_string()))
        ),
    }
}

/// ` ORDER BY ... LIMIT ...` for `shape`: as asked, then time ascending, then the dimension
/// value, so that every run pages the same way.
pub fn page_sql(shape: &Shape<'_>, p: &mut Params) -> String {
    let mut keys: Vec<String> = Vec::new();
    for (key, desc) in &shape.order {
        let expr = match key {
            OrderKey::Metric(m) => order_expr(m).map(str::to_string),
            OrderKey::Dimension(_) => Some("value".into()),
            OrderKey::Time => Some("t".into()),
        };
        if let Some(e) = expr {
            keys.push(format!("{e} {}", if *desc { "DESC" } else { "ASC" }));
        }
    }
    keys.push("t ASC".into());
    keys.push("value ASC".into());
    let mut out = format!(" ORDER BY {}", keys.join(", "));
    if let Some(limit) = shape.limit {
        out.push_str(&format!(
            " LIMIT {} OFFSET {}",
            p.add(Value::U64(limit)),
            p.add(Value::U64(shape.offset))
        ));
    }
    out
}

/// The SQL condition of `filter`, each condition rendered by `leaf`.
pub fn filter_sql(
    filter: &Filter,
    leaf: &mut dyn FnMut(&Condition, &mut Params) -> Result<String, NotFromAggregates>,
    p: &mut Params,
) -> Result<String, NotFromAggregates> {
    Ok(match filter {
        Filter::Condition(c) => leaf(c, p)?,
        Filter::And(fs) | Filter::Or(fs) => {
            let joiner = if matches!(filter, Filter::And(_)) {
                " AND "
            } else {
                " OR "
            };
            let parts = fs
                .iter()
                .map(|f| filter_sql(f, leaf, p))
                .collect::<Result<Vec<_>, _>>()?;
            format!("({})", parts.join(joiner))
        }
        Filter::Not(f) => format!("NOT ({})", filter_sql(f, leaf, p)?),
    })
}

/// One condition on the SQL expression `s`: any value matches (none, negated).
pub fn condition_sql(c: &Condition, s: &str, p: &mut Params) -> String {
    let any = matches_any(c, s, p);
    if c.op.is_negated() {
        format!("NOT {any}")
    } else {
        any
    }
}

/// Whether `s` matches any of the condition's values, the operator taken without its negation.
pub fn matches_any(c: &Condition, s: &str, p: &mut Params) -> String {
    let any: Vec<String> = c
        .values
        .iter()
        .map(|v| {
            // The labels of empty values, as the answers show them, select empty values.
            let shown_empty = v == "(none)"
                || (v == "Direct / None" && c.dimension == super::request::Dimension::Source);
            if shown_empty && matches!(c.op, Operator::Is | Operator::IsNot) {
                return format!("{s} = {}", p.add(Value::Str(String::new())));
            }
            let (subject, value) = if c.case_sensitive || c.op.is_pattern() {
                (s.to_string(), v.clone())
            } else {
                (format!("lowerUTF8({s})"), v.to_lowercase())
            };
            let v = p.add(Value::Str(value));
            match c.op {
                Operator::Is | Operator::IsNot => format!("{subject} = {v}"),
                Operator::Contains | Operator::ContainsNot => {
                    format!("position({subject}, {v}) > 0")
                }
                Operator::Matches | Operator::MatchesNot => format!("match({subject}, {v})"),
            }
        })
        .collect();
    format!("({})", any.join(" OR "))
}
