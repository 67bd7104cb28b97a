//! `date_range: "realtime"`: the last 30 minutes, straight from the raw events (the aggregates
//! lag by up to `[rollup] interval_secs`).

use super::binds::{Params, Value};
use super::date_range::realtime_window;
use super::request::{Dimension, Query};
use super::sums::{self, Group};
use super::{Answer, QueryError, ResultRow, timed};
use crate::config::SiteConfig;
use crate::store::Client;

/// Answers a realtime query: `visitors` (distinct visitor keys with any hit in the window,
/// heartbeats included: someone still reading counts), `pageviews` and `events`, overall or by
/// `event:page`.
pub async fn answer(
    client: &Client,
    query: &Query,
    site: &SiteConfig,
    now: u32,
) -> Result<Answer, QueryError> {
    let metrics: Vec<&'static str> = query.metrics.iter().map(|m| m.as_str()).collect();
    if let Some(m) = metrics
        .iter()
        .find(|m| !matches!(**m, "visitors" | "pageviews" | "events"))
    {
        return Err(QueryError::bad(format!(
            "#/metrics: {m} is not available for \"realtime\", which supports visitors, pageviews and events"
        )));
    }
    let by_page = match query.dimensions.as_slice() {
        [] => false,
        [Dimension::Page] => true,
        _ => {
            return Err(QueryError::bad(
                "#/dimensions: \"realtime\" supports no dimension or [\"event:page\"]",
            ));
        }
    };
    if query.filters.is_some() {
        return Err(QueryError::bad(
            "#/filters: \"realtime\" does not support filters",
        ));
    }
    let (from, to) = realtime_window(now);
    let value = if by_page {
        "if(path(url) = '', '/', path(url))"
    } else {
        "''"
    };
    let mut p = Params::default();
    let sql = format!(
        "SELECT '' AS t, {value} AS value, uniqExact(visitor_key) AS visitors, \
         toUInt64(0) AS visits, countIf(kind = 'pageview') AS pageviews, \
         countIf(kind IN ('pageview', 'event', 'outlink', 'download', 'search', 'content_interaction')) AS events, \
         toUInt64(0) AS bounces, toUInt64(0) AS duration, toUInt64(1) AS n \
         FROM events WHERE site_id = {} AND ts >= toDateTime({}) AND ts <= toDateTime({}) \
         AND is_bot = 0 GROUP BY t, value ORDER BY visitors DESC, value ASC LIMIT {} OFFSET {}",
        p.add(Value::U32(site.id)),
        p.add(Value::U32(from)),
        p.add(Value::U32(to)),
        p.add(Value::U64(u64::from(query.pagination.limit))),
        p.add(Value::U64(u64::from(query.pagination.offset)))
    );
    let (sql, binds) = p.finish(&sql);
    let mut groups: Vec<Group> =
        timed(binds.apply(client.query(&sql)).fetch_all::<Group>()).await?;
    if groups.is_empty() && !by_page {
        groups.push(Group::default());
    }
    let results = groups
        .iter()
        .map(|g| ResultRow {
            dimensions: if by_page {
                vec![g.value.clone()]
            } else {
                Vec::new()
            },
            metrics: metrics.iter().map(|m| sums::metric(m, g, None)).collect(),
            comparison: None,
        })
        .collect();
    let mut columns: Vec<String> = query
        .dimensions
        .iter()
        .map(|d| d.as_str().to_string())
        .collect();
    columns.extend(metrics.iter().map(|m| m.to_string()));
    let mut meta = serde_json::Map::new();
    meta.insert("time_zone".into(), site.tz().name().into());
    Ok(Answer {
        query: query.echo_window(from, to, site.tz()),
        meta,
        columns,
        results,
    })
}
