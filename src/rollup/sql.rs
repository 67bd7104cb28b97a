//! The SQL of the rollup: visits from raw events, and the aggregates from visits.
//!
//! Visits are computed in ClickHouse, from the raw events of one site's local day, rather than
//! by per-visitor state in the collector: hits of one visitor may reach any of several
//! collectors behind a load balancer, arrive late (`cdt`, bulk imports, a queue drained after an
//! outage) or out of order, and a collector may restart mid-visit. Only the database sees all
//! of them, so only a computation over the stored rows gives the same visits whatever the number
//! of collectors, and the same again when it is repeated.
//!
//! Everything here runs on ClickHouse 18.16 and on current releases: no window functions (visits
//! are cut with arrays: each visitor's sorted hit times, `arrayDifference` to find the gaps), no
//! CTEs, and `ALL INNER JOIN` (current releases deduplicate the *left* side of an `ANY INNER
//! JOIN` too, which would keep one hit per visitor).

use super::dimensions::{DIMENSIONS, Values};

/// `SELECT` of one site's visits of one local day, in the column order of `visits`.
///
/// Binds, in order: the date (`YYYY-MM-DD`), the site's time zone three times, then the site
/// id, the day's first second and the next day's first second (Unix, UTC), the visit timeout in
/// seconds, and the site id, first and next day's first second again.
///
/// A visit is a run of one visitor key's hits with no gap longer than the timeout; heartbeat
/// pings extend it (its duration runs from the first hit to the last), but a run of pings alone
/// is no visit. Entry and exit pages are the first and last page views (ties in the same second
/// broken by the page, so every run gives the same answer); referrer, campaign, device, location
/// and language are those of the visit's first hit other than a ping. Bots are left out.
/// Actions (Matomo's word; they count as `events`) are page views, events, outlinks,
/// downloads, site searches and content interactions; interactions are the actions other than
/// page views. A visit of one page view and no interaction is a bounce.
pub const VISITS_SELECT: &str = r#"SELECT
    toDate(?) AS day,
    site_id,
    visitor_key,
    toDateTime(visit_start, 'UTC') AS start,
    toHour(toDateTime(visit_start, 'UTC'), ?) AS start_hour,
    last_t - visit_start AS duration,
    pageviews,
    actions,
    interactions,
    pageviews = 1 AND interactions = 0 AS bounce,
    entry_page,
    exit_page,
    entry_hostname,
    exit_hostname,
    multiIf(src.1 = 'search', 'Organic Search', src.1 = 'social', 'Organic Social', src.1 = 'website', 'Referral', src.1 = 'campaign', 'Referral', 'Direct') AS channel,
    multiIf(src.6 != '', src.6, src.1 IN ('search', 'social'), src.2, src.1 IN ('website', 'campaign'), domainWithoutWWW(src.3), '') AS source,
    src.1 AS referrer_type,
    if(src.1 IN ('website', 'search', 'social', 'campaign'), domain(src.3), '') AS referrer_host,
    src.4 AS referrer_keyword,
    src.5 AS campaign_name,
    src.6 AS campaign_source,
    src.7 AS campaign_medium,
    src.8 AS campaign_keyword,
    src.9 AS campaign_content,
    who.1 AS country, who.2 AS region, who.3 AS city, who.4 AS browser, who.5 AS browser_version,
    who.6 AS os, who.7 AS os_version, who.8 AS device, who.9 AS resolution, who.10 AS lang,
    who.11 AS visitor_type,
    arrayMap(x -> x.1, pvs) AS pv_pages,
    arrayMap(x -> x.2, pvs) AS pv_titles,
    arrayMap(x -> x.3, pvs) AS pv_hosts,
    arrayMap(x -> x.4, pvs) AS pv_hours,
    arrayMap(x -> x.5, pvs) AS pv_load_ms,
    action_hours,
    arrayMap(x -> x.1, evs) AS ev_categories,
    arrayMap(x -> x.2, evs) AS ev_actions,
    arrayMap(x -> x.3, evs) AS ev_names,
    outlinks,
    downloads,
    arrayMap(x -> x.1, srch) AS searches,
    arrayMap(x -> x.2, srch) AS search_categories,
    goals,
    revenue
FROM (
    SELECT
        site_id,
        visitor_key,
        visit_start,
        max(t) AS last_t,
        countIf(kind = 'pageview') AS pageviews,
        countIf(kind IN ('pageview', 'event', 'outlink', 'download', 'search', 'content_interaction')) AS actions,
        countIf(kind IN ('event', 'outlink', 'download', 'search', 'content_interaction')) AS interactions,
        argMinIf(page, (t, page), kind = 'pageview') AS entry_page,
        argMaxIf(page, (t, page), kind = 'pageview') AS exit_page,
        argMinIf(domain(url), (t, page), kind = 'pageview') AS entry_hostname,
        argMaxIf(domain(url), (t, page), kind = 'pageview') AS exit_hostname,
        argMinIf((referrer_type, referrer_name, referrer, referrer_keyword, campaign_name, campaign_source, campaign_medium, campaign_keyword, campaign_content), (t, url), kind != 'ping') AS src,
        argMinIf((country, region, city, browser, browser_version, os, os_version, device, resolution, lang, toString(visitor_type)), (t, url), kind != 'ping') AS who,
        groupArrayIf((page, title, domain(url), toHour(ts, ?), load_ms), kind = 'pageview') AS pvs,
        groupArrayIf(toHour(ts, ?), kind IN ('pageview', 'event', 'outlink', 'download', 'search', 'content_interaction')) AS action_hours,
        groupArrayIf((event_category, event_action, event_name), kind = 'event') AS evs,
        groupArrayIf(target_url, kind = 'outlink') AS outlinks,
        groupArrayIf(target_url, kind = 'download') AS downloads,
        groupArrayIf((search_keyword, search_category), kind = 'search') AS srch,
        groupArrayIf(if(kind = 'goal', toString(goal_id), 'ecommerce'), kind IN ('goal', 'ecommerce_order')) AS goals,
        sumIf(ifNull(revenue, 0.), kind IN ('goal', 'ecommerce_order')) AS revenue
    FROM (
        SELECT *,
            arrayReduce('max', arrayFilter(s -> s <= t, starts)) AS visit_start
        FROM (
            SELECT ts, toUInt32(ts) AS t, site_id, kind, visitor_key, url,
                if(path(url) = '', '/', path(url)) AS page, title, referrer, target_url, lang,
                event_category, event_action, event_name, search_keyword, search_category,
                country, region, city, browser, browser_version, os, os_version, device, resolution,
                referrer_type, referrer_name, referrer_keyword, campaign_name, campaign_source,
                campaign_medium, campaign_keyword, campaign_content, visitor_type, goal_id, revenue,
                if(isNull(pf_net) AND isNull(pf_srv) AND isNull(pf_tfr) AND isNull(pf_dm1) AND isNull(pf_dm2) AND isNull(pf_onl), -1,
                   toInt32(ifNull(pf_net, 0) + ifNull(pf_srv, 0) + ifNull(pf_tfr, 0) + ifNull(pf_dm1, 0) + ifNull(pf_dm2, 0) + ifNull(pf_onl, 0))) AS load_ms
            FROM events
            WHERE site_id = ? AND ts >= toDateTime(?) AND ts < toDateTime(?) AND is_bot = 0
        ) AS hits
        ALL INNER JOIN (
            SELECT visitor_key,
                arrayFilter((x, d, i) -> i = 1 OR d > ?, sorted, arrayDifference(sorted), arrayEnumerate(sorted)) AS starts
            FROM (
                SELECT visitor_key, arraySort(groupArray(toUInt32(ts))) AS sorted
                FROM events
                WHERE site_id = ? AND ts >= toDateTime(?) AND ts < toDateTime(?) AND is_bot = 0
                GROUP BY visitor_key
            )
        ) AS per_visitor USING visitor_key
    )
    GROUP BY site_id, visitor_key, visit_start
    HAVING countIf(kind != 'ping') > 0
)
"#;

/// `INSERT` of a day's totals per site from a table shaped like `visits`.
/// Binds: the date, the site ids (array).
pub fn daily_insert(target: &str, visits: &str) -> String {
    format!(
        "INSERT INTO {target} (day, site_id, visitors, visits, pageviews, events, bounces, duration) \
         SELECT day, site_id, uniqExact(visitor_key), count(), sum(pageviews), sum(actions), \
         sum(bounce), sum(duration) \
         FROM {visits} WHERE day = toDate(?) AND has(?, site_id) GROUP BY day, site_id"
    )
}

/// `INSERT` of a day's hourly totals per site. Visits, bounces and duration count in the hour
/// a visit began, page views and events in their own hour, visitors in every hour they did
/// something in. Binds: the date, the site ids (array).
pub fn hourly_insert(target: &str, visits: &str) -> String {
    format!(
        "INSERT INTO {target} (day, site_id, hour, visitors, visits, pageviews, events, bounces, duration) \
         SELECT day, site_id, hour, uniqExact(visitor_key), countIf(start_hour = hour), \
         sum(arrayCount(h -> h = hour, pv_hours)), sum(arrayCount(h -> h = hour, action_hours)), \
         sumIf(bounce, start_hour = hour), sumIf(duration, start_hour = hour) \
         FROM (SELECT day, site_id, visitor_key, start_hour, bounce, duration, pv_hours, action_hours, \
               arrayJoin(arrayDistinct(arrayPushBack(action_hours, start_hour))) AS hour \
               FROM {visits} WHERE day = toDate(?) AND has(?, site_id)) \
         GROUP BY day, site_id, hour"
    )
}

/// `INSERT` of a day's breakdowns by every per-visit dimension, in one pass over the visits.
/// Binds: the date, the site ids (array).
pub fn per_visit_breakdown_insert(target: &str, visits: &str) -> String {
    let pairs: Vec<String> = DIMENSIONS
        .iter()
        .filter_map(|d| match d.values {
            Values::PerVisit(expr) => Some(format!("('{}', {expr})", d.name)),
            Values::PerAction { .. } => None,
        })
        .collect();
    format!(
        "INSERT INTO {target} (day, site_id, dimension, value, visitors, visits, pageviews, events, bounces, duration) \
         SELECT day, site_id, dv.1 AS dimension, dv.2 AS value, uniqExact(visitor_key), count(), \
         sum(pageviews), sum(actions), sum(bounce), sum(duration) \
         FROM {visits} ARRAY JOIN [{}] AS dv \
         WHERE day = toDate(?) AND has(?, site_id) \
         GROUP BY day, site_id, dimension, value",
        pairs.join(", ")
    )
}

/// `INSERT` of a day's breakdowns by every per-action dimension (pages, events, searches,
/// ...): each visit counts once under each distinct value it had, with the number of such
/// actions (`countEqual`) as its events, and as its page views for page dimensions. One pass
/// over the visits, no grouping per visit. Binds: the date, the site ids (array).
pub fn per_action_breakdown_insert(target: &str, visits: &str) -> String {
    let arrays: Vec<String> = DIMENSIONS
        .iter()
        .filter_map(|d| match d.values {
            Values::PerAction { pageview, .. } => {
                let array = d.array_sql();
                Some(format!(
                    "arrayMap(v -> ('{}', v, {}, countEqual({array}, v)), arrayDistinct({array}))",
                    d.name,
                    u8::from(pageview),
                ))
            }
            Values::PerVisit(_) => None,
        })
        .collect();
    format!(
        "INSERT INTO {target} (day, site_id, dimension, value, visitors, visits, pageviews, events, bounces, duration) \
         SELECT day, site_id, dv.1 AS dimension, dv.2 AS value, uniqExact(visitor_key), count(), \
         sum(dv.3 * dv.4), sum(dv.4), sum(bounce), sum(duration) \
         FROM {visits} ARRAY JOIN arrayConcat({}) AS dv \
         WHERE day = toDate(?) AND has(?, site_id) \
         GROUP BY day, site_id, dimension, value",
        arrays.join(", ")
    )
}

/// Values listed per site, day and dimension in `agg_top` (the most visitors first); the rest
/// is summarised in one row (schema/0007_top_lists.sql, src/query/top.rs).
pub const TOP_LIST_ROWS: usize = 1000;

/// The columns of `agg_top` and `agg_top_week` after their period column.
const TOP_COLUMNS: &str = "site_id, dimension, listed, value, visitors, visits, pageviews, \
     events, bounces, duration, tailed, tail_visitors, tail_visits, tail_pageviews, tail_events";

/// The two `INSERT`s of a day's top lists into `target` (shaped like `agg_top`) from the
/// breakdown rows of `breakdown` that match `filter`: per site, day and dimension, the values
/// with more visitors than the [`TOP_LIST_ROWS`]+1st value (so at most that many, and ties at
/// the edge all left out, whatever their order), then, where some values were left out, one
/// summary row with the largest visitors, visits, page views and events among them. Binds: those
/// of `filter`, for each statement.
pub fn top_list_inserts(target: &str, breakdown: &str, filter: &str) -> [String; 2] {
    let edge = TOP_LIST_ROWS + 1;
    [
        format!(
            "INSERT INTO {target} (day, {TOP_COLUMNS}) \
             SELECT day, site_id, dimension, 1, r.1, r.2, r.3, r.4, r.5, r.6, r.7, \
             toUInt64(theta > 0), 0, 0, 0, 0 \
             FROM (SELECT day, site_id, dimension, \
                   groupArray((value, visitors, visits, pageviews, events, bounces, duration)) AS rows, \
                   arrayElement(arrayReverseSort(arrayMap(x -> x.2, rows)), {edge}) AS theta \
                   FROM {breakdown} WHERE {filter} GROUP BY day, site_id, dimension) \
             ARRAY JOIN rows AS r WHERE r.2 > theta"
        ),
        format!(
            "INSERT INTO {target} (day, {TOP_COLUMNS}) \
             SELECT day, site_id, dimension, 0, '', 0, 0, 0, 0, 0, 0, 1, \
             arrayReduce('max', arrayMap(x -> x.1, rest)), arrayReduce('max', arrayMap(x -> x.2, rest)), \
             arrayReduce('max', arrayMap(x -> x.3, rest)), arrayReduce('max', arrayMap(x -> x.4, rest)) \
             FROM (SELECT day, site_id, dimension, \
                   groupArray((visitors, visits, pageviews, events)) AS rows, \
                   arrayElement(arrayReverseSort(arrayMap(x -> x.1, rows)), {edge}) AS theta, \
                   arrayFilter(x -> x.1 <= theta, rows) AS rest \
                   FROM {breakdown} WHERE {filter} GROUP BY day, site_id, dimension) \
             WHERE theta > 0"
        ),
    ]
}

/// `INSERT` of one week's top lists, summed from `agg_top`, into `target` (shaped like
/// `agg_top_week`): each value's sums and listed days with a rest, each dimension's days with a
/// rest and the sum of their largest rests. Binds: the week's Monday and Sunday.
pub fn week_insert(target: &str) -> String {
    format!(
        "INSERT INTO {target} (week, {TOP_COLUMNS}) \
         SELECT toMonday(day) AS week, site_id, dimension, listed, value, sum(visitors), \
         sum(visits), sum(pageviews), sum(events), sum(bounces), sum(duration), sum(tailed), \
         sum(tail_visitors), sum(tail_visits), sum(tail_pageviews), sum(tail_events) \
         FROM agg_top WHERE day >= toDate(?) AND day <= toDate(?) \
         GROUP BY week, site_id, dimension, listed, value"
    )
}
