//! The one query engine of the read side: the Stats API, the dashboard and `tally report` all
//! call [`Engine::run`]. It reads only what the rollup wrote (`visits`, the daily aggregates)
//! and, for realtime, the raw `events`; it never imports the write path.

pub mod aggregates;
pub mod binds;
pub mod date_range;
pub mod filter;
pub mod labels;
pub mod raw;
pub mod realtime;
pub mod render;
pub mod request;
pub mod sums;
pub mod top;
pub mod vocabulary;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;

use crate::config::{Config, SiteConfig};
use crate::store::Client;
use aggregates::{OrderKey, Shape};
use filter::Filter;
use sums::Group;

/// Which sites a caller may query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Every configured site (an operator at the terminal).
    All,
    /// Only these site ids (an API key).
    Sites(Vec<u32>),
}

impl Access {
    /// Whether site `id` may be queried.
    pub fn allows(&self, id: u32) -> bool {
        match self {
            Access::All => true,
            Access::Sites(ids) => ids.contains(&id),
        }
    }
}

/// Why a query was not answered: the HTTP status and a message naming the offending field,
/// as Plausible words them (`{"error": message}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// 400 for a bad request, 404 for an unknown site or one the caller may not see.
    pub status: u16,
    /// One line for people.
    pub message: String,
}

impl QueryError {
    /// A 400 with this message.
    pub fn bad(message: impl Into<String>) -> Self {
        QueryError {
            status: 400,
            message: message.into(),
        }
    }
}

/// One result row: the dimension values and the metric values, in the request's order.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    /// Values of the requested dimensions.
    pub dimensions: Vec<String>,
    /// Values of the requested metrics (`null` where undefined, e.g. a bounce rate of no visits).
    pub metrics: Vec<serde_json::Value>,
    /// With `include.comparisons`: the same row in the comparison period, and the change.
    pub comparison: Option<Comparison>,
}

/// A row's values in the comparison period.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Dimension values in the comparison period (the time labels differ).
    pub dimensions: Vec<String>,
    /// Metric values in the comparison period.
    pub metrics: Vec<serde_json::Value>,
    /// Change per metric: percent, or percentage points for rates.
    pub change: Vec<serde_json::Value>,
}

/// A query's answer, ready to be written as Plausible's JSON or as CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The request as understood (Plausible echoes it).
    pub query: serde_json::Value,
    /// `meta`: notes on how to read the numbers, `total_rows`, `time_labels`.
    pub meta: serde_json::Map<String, serde_json::Value>,
    /// Names of the dimensions, then of the metrics (the CSV header).
    pub columns: Vec<String>,
    /// The rows.
    pub results: Vec<ResultRow>,
}

/// The query engine over one ClickHouse database.
#[derive(Clone)]
pub struct Engine {
    client: Client,
    config: Arc<Config>,
}

/// Longest a query may take (ClickHouse is told the same, so it stops working too).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

impl Engine {
    /// An engine reading `client`'s database for the sites of `config`.
    pub fn new(client: Client, config: Arc<Config>) -> Self {
        Engine {
            client: client.with_setting("max_execution_time", QUERY_TIMEOUT.as_secs().to_string()),
            config,
        }
    }

    /// Answers a Stats API v2 query (the JSON body of `POST /api/v2/query`).
    pub async fn run(
        &self,
        body: &serde_json::Value,
        access: &Access,
    ) -> Result<Answer, QueryError> {
        self.run_at(body, access, crate::time::now_unix()).await
    }

    /// [`Engine::run`] as if it were `now` (Unix seconds): "today" is `now`'s local date.
    pub async fn run_at(
        &self,
        body: &serde_json::Value,
        access: &Access,
        now: u32,
    ) -> Result<Answer, QueryError> {
        let query = request::parse(body)?;
        let site = self.site(&query.site, access)?;
        let tz = site.tz();
        if query.date_range.is_realtime() {
            return realtime::answer(&self.client, &query, site, now).await;
        }
        let today = crate::time::local_date(tz, now);
        let first_day = if matches!(query.date_range, date_range::DateRange::All) {
            self.first_day(site.id).await?
        } else {
            None
        };
        let resolved = query.resolve(today, first_day)?;
        let grain = query.time_grain(resolved);
        let metrics: Vec<&'static str> = query.metrics.iter().map(|m| m.as_str()).collect();
        let shape = shape_of(&query, site.id, resolved, grain)?;
        let groups = self.groups(&shape, &metrics).await?;
        let entered = self.entry_groups(&query, &shape, &metrics, &groups).await?;
        let totals = self.denominator(&query, &shape, &metrics).await?;
        let comparison = match query.comparison_period(resolved, today) {
            Some(period) => {
                let mut other = shape.clone();
                other.first = period.0;
                other.last = period.1;
                // Every row of the other period, to match them with this one's.
                other.limit = None;
                other.offset = 0;
                let groups = self.wanted_groups(&other, &metrics, &groups).await?;
                let entered = self.entry_groups(&query, &other, &metrics, &groups).await?;
                let totals = self.denominator(&query, &other, &metrics).await?;
                Some((period, groups, entered, totals))
            }
            None => None,
        };
        let mut meta = serde_json::Map::new();
        if query.include.total_rows {
            let n = self.count_rows(&shape).await?;
            meta.insert("total_rows".into(), n.into());
        }
        if query.include.time_labels
            && let Some(g) = grain
        {
            meta.insert(
                "time_labels".into(),
                labels::time_labels(g, resolved).into(),
            );
        }
        if metrics.contains(&"visitors") && resolved.0 != resolved.1 {
            meta.insert(
                "visitors_note".into(),
                "visitors over several days are the sum of each day's visitors: tally cannot \
                 recognise a person across days, by design"
                    .into(),
            );
        }
        meta.insert("time_zone".into(), tz.name().into());
        if let Some((period, _, _, _)) = &comparison {
            meta.insert(
                "comparison_date_range".into(),
                serde_json::json!([period.0.to_string(), period.1.to_string()]),
            );
        }
        let dims = &query.dimensions;
        let time_pos = dims.iter().position(|d| d.time_grain().is_some());
        let results = groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let dimensions = labels::dimension_values(dims, g);
                let values: Vec<serde_json::Value> = metrics
                    .iter()
                    .map(|m| sums::metric(m, of_metric(m, g, entered.as_deref(), i), totals))
                    .collect();
                let comparison =
                    comparison
                        .as_ref()
                        .map(|(_, other, other_entered, other_totals)| {
                            // Time buckets are matched by position, everything else by value.
                            let at = match time_pos {
                                Some(_) if shape.dims.is_empty() => {
                                    Some(i + shape.offset as usize).filter(|&j| j < other.len())
                                }
                                _ => other.iter().position(|o| {
                                    o.value == g.value && (time_pos.is_none() || o.t == g.t)
                                }),
                            };
                            let matched = at.map(|j| &other[j]);
                            let empty = sums::Group::default();
                            let o = matched.unwrap_or(&empty);
                            let before: Vec<serde_json::Value> = metrics
                                .iter()
                                .map(|m| {
                                    let source = match at {
                                        Some(j) => of_metric(m, o, other_entered.as_deref(), j),
                                        None => o,
                                    };
                                    sums::metric(m, source, *other_totals)
                                })
                                .collect();
                            let change = metrics
                                .iter()
                                .zip(values.iter().zip(&before))
                                .map(|(m, (now, before))| sums::change(m, now, before))
                                .collect();
                            Comparison {
                                dimensions: matched
                                    .map(|o| labels::dimension_values(dims, o))
                                    .unwrap_or_else(|| dimensions.clone()),
                                metrics: before,
                                change,
                            }
                        });
                ResultRow {
                    dimensions,
                    metrics: values,
                    comparison,
                }
            })
            .collect();
        let mut columns: Vec<String> = dims
            .iter()
            .map(|d| d.name_with(query.prop_key.as_deref()))
            .collect();
        columns.extend(metrics.iter().map(|m| m.to_string()));
        Ok(Answer {
            query: query.echo(resolved, tz),
            meta,
            columns,
            results,
        })
    }

    /// The configured site `site` names, if `access` allows it; 404 otherwise (an unknown site
    /// and one the key may not see look the same).
    fn site(&self, site: &request::SiteRef, access: &Access) -> Result<&SiteConfig, QueryError> {
        let found = match site {
            request::SiteRef::Id(id) => self.config.site(*id),
            request::SiteRef::Domain(d) => self.config.site_by_domain(d),
        };
        match found {
            Some(s) if access.allows(s.id) => Ok(s),
            _ => Err(QueryError {
                status: 404,
                message: "Site not found: check `site_id` (a domain of the site or its id) and \
                          that your API key may see it"
                    .into(),
            }),
        }
    }

    /// The site's first day with aggregates, for `all`.
    async fn first_day(&self, site: u32) -> Result<Option<NaiveDate>, QueryError> {
        #[derive(clickhouse::Row, serde::Deserialize)]
        struct First {
            day: String,
            n: u64,
        }
        let row = self
            .fetch_one::<First>(
                self.client
                    .query("SELECT toString(min(day)) AS day, count() AS n FROM agg_daily WHERE site_id = ?")
                    .bind(site),
            )
            .await?;
        Ok((row.n > 0)
            .then(|| NaiveDate::parse_from_str(&row.day, "%Y-%m-%d").ok())
            .flatten())
    }

    /// The groups answering `shape`: from the top lists when they prove them, else
    /// [`Engine::summed_groups`].
    async fn groups(&self, shape: &Shape<'_>, metrics: &[&str]) -> Result<Vec<Group>, QueryError> {
        if let Some(stored) = top_dimension(shape)
            && let Some(groups) = top::answer(&self.top_rows(shape, stored).await?, shape)
        {
            return Ok(groups);
        }
        self.summed_groups(shape, metrics).await
    }

    /// The groups of `shape` with the values of `wanted` (the rows of the answer, for a
    /// comparison period or the visits entering on its pages): from the top lists when they
    /// know each of those values exactly there, else [`Engine::summed_groups`] (the lists,
    /// already read, are not asked again).
    async fn wanted_groups(
        &self,
        shape: &Shape<'_>,
        metrics: &[&str],
        wanted: &[Group],
    ) -> Result<Vec<Group>, QueryError> {
        if let Some(stored) = top_dimension(shape) {
            let values: Vec<&str> = wanted.iter().map(|g| g.value.as_str()).collect();
            if let Some(groups) = top::answer_for(&self.top_rows(shape, stored).await?, &values) {
                return Ok(groups);
            }
        }
        self.summed_groups(shape, metrics).await
    }

    /// The groups answering `shape` from the daily aggregates when they answer exactly, else
    /// from the per-visit rows when every day asked about still has them, else a 400 saying
    /// why not.
    async fn summed_groups(
        &self,
        shape: &Shape<'_>,
        metrics: &[&str],
    ) -> Result<Vec<Group>, QueryError> {
        let why = match aggregates::plan(shape) {
            Ok(_) if let Some(why) = self.props_cut(shape).await? => why,
            Ok(plan) => {
                let (sql, binds) = plan.sql(shape, true).map_err(|e| refuse(e, None))?;
                let groups = self
                    .fetch_all::<Group>(binds.apply(self.client.query(&sql)))
                    .await?;
                let inexact = plan.inexact(metrics, &groups);
                if inexact.is_empty() {
                    return Ok(groups);
                }
                aggregates::NotFromAggregates(format!(
                    "{} cannot be added up exactly over the daily aggregates for these filters: \
                     they match several values on one day, and a visit or visitor with more \
                     than one of them would count more than once; ask for each value on its \
                     own, or break down by the filtered dimension",
                    inexact.join(", ")
                ))
            }
            Err(why) => why,
        };
        // The pruner's rule: the first local date whose per-visit rows are all still kept.
        let raw_days = self.config.retention.raw_days;
        let raw_from =
            crate::prune::visits_first_day(&self.config.sites, raw_days, crate::time::now_unix());
        if shape.first >= raw_from {
            let (sql, binds) = raw::sql(shape, metrics, true)
                .map_err(|e| refuse(e, Some((raw_from, raw_days))))?;
            return self
                .fetch_all::<Group>(binds.apply(self.client.query(&sql)))
                .await;
        }
        Err(refuse(why, Some((raw_from, raw_days))))
    }

    /// Why the aggregates cannot answer about `shape`'s custom property: a day on which the
    /// rollup kept other keys but not this one (docs/reports.md, "Custom properties").
    async fn props_cut(
        &self,
        shape: &Shape<'_>,
    ) -> Result<Option<aggregates::NotFromAggregates>, QueryError> {
        #[derive(clickhouse::Row, serde::Deserialize)]
        struct Day {
            first_day: String,
        }
        let Some((sql, binds)) = aggregates::props_refusal_sql(shape) else {
            return Ok(None);
        };
        let days = self
            .fetch_all::<Day>(binds.apply(self.client.query(&sql)))
            .await?;
        Ok(days.first().map(|d| {
            aggregates::NotFromAggregates(format!(
                "on {} the site sent more than {} custom property keys and \"{}\" was not among those kept",
                d.first_day,
                crate::rollup::sql::PROP_KEYS_PER_DAY,
                shape.prop_key.unwrap_or_default()
            ))
        }))
    }

    /// The top lists of `stored` summed over `shape`'s days.
    async fn top_rows(
        &self,
        shape: &Shape<'_>,
        stored: &'static crate::rollup::dimensions::Dimension,
    ) -> Result<Vec<top::TopRow>, QueryError> {
        let now = crate::time::now_unix();
        let summed = timed(crate::prune::date_partitions(&self.client, "agg_top_week")).await?;
        let weeks = top::weeks_inside(
            shape.first,
            shape.last,
            crate::prune::Windows::of(&self.config.retention).aggregates_keep_from(now),
            &summed,
        );
        let (sql, binds) = top::sql(shape, stored, &weeks);
        self.fetch_all::<top::TopRow>(binds.apply(self.client.query(&sql)))
            .await
    }

    /// For metrics of whole visits split by `event:page` (the one event dimension they go
    /// with): the groups of the visits that *entered* on each page, as Plausible counts them
    /// (docs/stats-api.md, "Scopes"), one per group of `groups` (an empty one where nobody
    /// entered on the page). The same question asked by `visit:entry_page` instead, matched by
    /// time bucket and value. `None` when the query has no such metric or dimension.
    async fn entry_groups(
        &self,
        query: &request::Query,
        shape: &Shape<'_>,
        metrics: &[&str],
        groups: &[Group],
    ) -> Result<Option<Vec<Group>>, QueryError> {
        let event_dims: Vec<request::Dimension> = query
            .dimensions
            .iter()
            .copied()
            .filter(|d| d.scope() == request::Scope::Event)
            .collect();
        if event_dims != [request::Dimension::Page]
            || !metrics.iter().any(|m| BY_ENTRY_PAGE.contains(m))
        {
            return Ok(None);
        }
        let entry = Shape {
            dims: shape
                .dims
                .iter()
                .map(|&d| {
                    if d == request::Dimension::Page.as_str() {
                        request::Dimension::EntryPage.as_str()
                    } else {
                        d
                    }
                })
                .collect(),
            order: Vec::new(),
            limit: None,
            offset: 0,
            ..shape.clone()
        };
        // Only the pages of `groups` are wanted: the top lists of entry pages may know them.
        let entered = self.wanted_groups(&entry, &BY_ENTRY_PAGE, groups).await?;
        Ok(Some(
            groups
                .iter()
                .map(|g| {
                    entered
                        .iter()
                        .find(|e| e.t == g.t && e.value == g.value)
                        .cloned()
                        .unwrap_or_default()
                })
                .collect(),
        ))
    }

    /// The denominator of `percentage` (the visitors of the whole filtered period) and of
    /// `conversion_rate` (the visitors without the goal conditions), if asked for.
    async fn denominator(
        &self,
        query: &request::Query,
        shape: &Shape<'_>,
        metrics: &[&str],
    ) -> Result<Option<u64>, QueryError> {
        let wants_percentage = metrics.contains(&"percentage");
        let wants_conversion = metrics.contains(&"conversion_rate");
        if !wants_percentage && !wants_conversion {
            return Ok(None);
        }
        let without_goals;
        let filter = if wants_conversion {
            without_goals = query.filters.as_ref().and_then(strip_goals);
            without_goals.as_ref()
        } else {
            shape.filter
        };
        let total = Shape {
            grain: None,
            dims: Vec::new(),
            filter,
            order: Vec::new(),
            limit: None,
            offset: 0,
            ..shape.clone()
        };
        let groups = self.groups(&total, &["visitors"]).await?;
        Ok(Some(groups.first().map_or(0, |g| g.visitors)))
    }

    async fn count_rows(&self, shape: &Shape<'_>) -> Result<u64, QueryError> {
        #[derive(clickhouse::Row, serde::Deserialize)]
        struct N {
            n: u64,
        }
        // Where no day had a rest, the top lists hold every value.
        if let Some(stored) = top_dimension(shape)
            && let Some(n) = top::count(&self.top_rows(shape, stored).await?)
        {
            return Ok(n);
        }
        // As the groups were found: a custom property cut on some day came from the visits.
        let cut = self.props_cut(shape).await?.is_some();
        let (sql, binds) = match aggregates::plan(shape) {
            Ok(plan) if !cut => plan.sql(shape, false),
            _ => raw::sql(shape, &["visits"], false),
        }
        .map_err(|e| refuse(e, None))?;
        let sql = format!("SELECT count() AS n FROM ({sql})");
        Ok(self
            .fetch_one::<N>(binds.apply(self.client.query(&sql)))
            .await?
            .n)
    }

    async fn fetch_all<T>(&self, q: clickhouse::query::Query) -> Result<Vec<T>, QueryError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        timed(q.fetch_all::<T>()).await
    }

    async fn fetch_one<T>(&self, q: clickhouse::query::Query) -> Result<T, QueryError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        timed(q.fetch_one::<T>()).await
    }
}

/// The stored dimension whose top lists may answer `shape` (src/query/top.rs).
fn top_dimension(shape: &Shape<'_>) -> Option<&'static crate::rollup::dimensions::Dimension> {
    // A custom property's rows are read with the days that lack them (src/query/aggregates.rs),
    // which the top lists cannot do.
    aggregates::plan(shape)
        .ok()
        .and_then(|plan| top::applies(&plan, shape))
        .filter(|d| d.name != crate::rollup::dimensions::PROPS.name)
}

/// The metrics of whole visits that `event:page` splits by the visits entering on the page
/// (`views_per_visit` is refused with dimensions).
const BY_ENTRY_PAGE: [&str; 2] = ["bounce_rate", "visit_duration"];

/// The group `metric` of result row `i` is computed from: the visits that entered on its page
/// for [`BY_ENTRY_PAGE`] when split by page, else the row's own.
fn of_metric<'g>(metric: &str, g: &'g Group, entered: Option<&'g [Group]>, i: usize) -> &'g Group {
    match entered.and_then(|e| e.get(i)) {
        Some(e) if BY_ENTRY_PAGE.contains(&metric) => e,
        _ => g,
    }
}

/// Waits for ClickHouse at most [`QUERY_TIMEOUT`]; its failures are the server's (503), not the
/// client's.
pub(crate) async fn timed<T>(
    f: impl Future<Output = Result<T, clickhouse::error::Error>>,
) -> Result<T, QueryError> {
    match tokio::time::timeout(QUERY_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "a report query failed");
            Err(QueryError {
                status: 503,
                message: "the database could not answer; try again later".into(),
            })
        }
        Err(_) => Err(QueryError {
            status: 503,
            message: format!("the query took longer than {QUERY_TIMEOUT:?}"),
        }),
    }
}

/// The 400 for a question neither source answers: why the aggregates cannot, and from which
/// day the per-visit rows could (and for how many days they are kept).
fn refuse(e: aggregates::NotFromAggregates, raw_from: Option<(NaiveDate, u32)>) -> QueryError {
    let raw = match raw_from {
        Some((d, days)) => format!(
            "; per-visit data, which answers any combination, is kept for {days} days: ask about {d} or later"
        ),
        None => String::new(),
    };
    QueryError::bad(format!(
        "This query cannot be answered exactly: {}{raw}",
        e.0
    ))
}

/// The filter without its conditions on goals (for the denominator of `conversion_rate`):
/// only a top-level `and` of conditions can be split that way.
fn strip_goals(filter: &Filter) -> Option<Filter> {
    let is_goal =
        |f: &Filter| matches!(f, Filter::Condition(c) if c.dimension == request::Dimension::Goal);
    match filter {
        f if is_goal(f) => None,
        Filter::And(fs) => {
            let rest: Vec<Filter> = fs.iter().filter(|f| !is_goal(f)).cloned().collect();
            match rest.len() {
                0 => None,
                1 => rest.into_iter().next(),
                _ => Some(Filter::And(rest)),
            }
        }
        other => Some(other.clone()),
    }
}

/// The engine's question for `query` over the resolved days.
fn shape_of<'q>(
    query: &'q request::Query,
    site_id: u32,
    resolved: (NaiveDate, NaiveDate),
    grain: Option<date_range::TimeGrain>,
) -> Result<Shape<'q>, QueryError> {
    let dims: Vec<&'static str> = query
        .dimensions
        .iter()
        .filter(|d| d.time_grain().is_none())
        .map(|d| labels::stored_name(*d))
        .collect();
    let order = query
        .order_by
        .iter()
        .map(|(by, dir)| {
            let key = match by {
                request::OrderBy::Metric(m) => OrderKey::Metric(m.as_str().to_string()),
                request::OrderBy::Dimension(d) if d.time_grain().is_some() => OrderKey::Time,
                request::OrderBy::Dimension(d) => OrderKey::Dimension(d.as_str().to_string()),
            };
            (key, matches!(dir, request::Direction::Desc))
        })
        .collect();
    Ok(Shape {
        site_id,
        first: resolved.0,
        last: resolved.1,
        grain,
        dims,
        filter: query.filters.as_ref(),
        order,
        limit: Some(u64::from(query.pagination.limit)),
        offset: u64::from(query.pagination.offset),
        prop_key: query.prop_key.as_deref(),
    })
}
