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
//! CTEs, no `JOIN`. Two traps of 18.16 shape the visits statement: a lambda captures only
//! columns of the subquery below it (on 18.16 a lambda capturing an alias of its own `SELECT`
//! fails with "Unknown identifier" or, as seen once, silently reads wrong values), and no
//! captured lambda goes inside `arrayReduce` (that crashed the 18.16 server).

use super::dimensions::{DIMENSIONS, Values};

/// `SELECT` of one site's visits of one local day, in the column order of `visits`.
///
/// Binds, in order: the date (`YYYY-MM-DD`), the site's time zone, the visit timeout in
/// seconds, the site's time zone again, then the site id, the day's first second and the next
/// day's first second (Unix, UTC).
///
/// A visit is a run of one visitor key's hits with no gap longer than the timeout; heartbeat
/// pings extend it (its duration runs from the first hit to the last), but a run of pings alone
/// is no visit. Entry and exit pages are the first and last page views (ties in the same second
/// broken by the page, so every run gives the same answer); referrer, campaign, device, location
/// and language are those of the visit's first hit other than a ping (ties broken by the URL).
/// Bots are left out. Actions (Matomo's word; they count as `events`) are page views, events,
/// outlinks, downloads, site searches and content interactions; interactions are the actions
/// other than page views. A visit of one page view and no interaction is a bounce.
///
/// One pass over the day's events (docs/performance.md, "Reports"): grouped by visitor key,
/// each visitor's hits become arrays of `(time, ..)` tuples, one per kind of hit that feeds a
/// column (page views, actions, events, ..., and every hit but pings with the first-hit
/// columns). Their sorted times give the visits (`ARRAY JOIN`, one row per visit, with its
/// first and last second), and each visit keeps the elements inside its time span: visits of
/// one visitor never overlap. A visit's entry page is the smallest `(time, page)` of its page
/// views, its exit page the largest, and its first hit the smallest `(time, url)` of its hits
/// other than pings; exact ties go to the element gathered first (`arrayEnumerate` in the sort
/// key), as `argMin`/`argMax` would pick. The arrays are not sorted: they keep the order the
/// hits were read in. This replaced a self-join of the day's events that took twice as long.
///
/// Host names (`pv_hosts`, the entry and exit hostnames, `referrer_host`, a website's
/// `source`) are the host of the stored URL as the `url` crate wrote it: after the scheme and
/// any `user:password@`, up to the port, path, query or fragment (an IPv6 host keeps its
/// brackets), and `source` drops a leading `www.`. They are cut by a regular expression (RE2 on
/// every release), not by ClickHouse's `domain()`/`domainWithoutWWW()`, which disagree between
/// releases: ClickHouse 26 returns an empty host for hosts the URL standard allows but it does
/// not (with `~`, `=`, `&`, `;`, `{`, ..., without a dot such as `localhost`, or after user
/// info), where 18.16 returns the host, and 18.16 returns the user name for
/// `https://user:pw@host/`. An empty host put a referral under the direct visits' empty value
/// (tests/rollup_visits.rs, tests/modern/check_rollup.py).
/// The `??` in the pattern are the `clickhouse` crate's escape for a literal `?` (a single one
/// is a bind).
pub const VISITS_SELECT: &str = r#"SELECT
    toDate(?) AS day,
    site_id,
    visitor_key,
    toDateTime(start_t, 'UTC') AS start,
    toHour(toDateTime(start_t, 'UTC'), ?) AS start_hour,
    end_t - start_t AS duration,
    length(v_pageviews) AS pageviews,
    length(v_actions) AS actions,
    actions - pageviews AS interactions,
    pageviews = 1 AND interactions = 0 AS bounce,
    entry_pv.2 AS entry_page,
    exit_pv.2 AS exit_page,
    entry_pv.4 AS entry_hostname,
    exit_pv.4 AS exit_hostname,
    multiIf(first_hit.3 = 'search', 'Organic Search', first_hit.3 = 'social', 'Organic Social', first_hit.3 = 'website', 'Referral', first_hit.3 = 'campaign', 'Referral', 'Direct') AS channel,
    multiIf(first_hit.8 != '', first_hit.8, first_hit.3 IN ('search', 'social'), first_hit.4, first_hit.3 IN ('website', 'campaign'), replaceRegexpOne(first_hit.5, '^www\\.', ''), '') AS source,
    first_hit.3 AS referrer_type,
    if(first_hit.3 IN ('website', 'search', 'social', 'campaign'), first_hit.5, '') AS referrer_host,
    first_hit.6 AS referrer_keyword,
    first_hit.7 AS campaign_name,
    first_hit.8 AS campaign_source,
    first_hit.9 AS campaign_medium,
    first_hit.10 AS campaign_keyword,
    first_hit.11 AS campaign_content,
    first_hit.12 AS country, first_hit.13 AS region, first_hit.14 AS city, first_hit.15 AS browser,
    first_hit.16 AS browser_version, first_hit.17 AS os, first_hit.18 AS os_version,
    first_hit.19 AS device, first_hit.20 AS resolution, first_hit.21 AS lang,
    first_hit.22 AS visitor_type,
    arrayMap(x -> x.2, v_pageviews) AS pv_pages,
    arrayMap(x -> x.3, v_pageviews) AS pv_titles,
    arrayMap(x -> x.4, v_pageviews) AS pv_hosts,
    arrayMap(x -> x.5, v_pageviews) AS pv_hours,
    arrayMap(x -> x.6, v_pageviews) AS pv_load_ms,
    arrayMap(x -> x.2, v_actions) AS action_hours,
    arrayMap(x -> x.2, v_events) AS ev_categories,
    arrayMap(x -> x.3, v_events) AS ev_actions,
    arrayMap(x -> x.4, v_events) AS ev_names,
    arrayMap(x -> x.2, v_outlinks) AS outlinks,
    arrayMap(x -> x.2, v_downloads) AS downloads,
    arrayMap(x -> x.2, v_searches) AS searches,
    arrayMap(x -> x.3, v_searches) AS search_categories,
    arrayMap(x -> x.2, v_goals) AS goals,
    arraySum(arrayMap(x -> x.3, v_goals)) AS revenue,
    arrayMap(x -> x.3, v_actions) AS action_pageview,
    arrayMap(x -> x.4, v_actions) AS action_prop_keys,
    arrayMap(x -> x.5, v_actions) AS action_prop_values
FROM (
    SELECT site_id, visitor_key, start_t, end_t,
        arrayFilter(x -> x.1 >= start_t AND x.1 <= end_t, non_pings) AS v_non_pings,
        arrayFilter(x -> x.1 >= start_t AND x.1 <= end_t, pageview_hits) AS v_pageviews,
        arrayFilter(x -> x.1 >= start_t AND x.1 <= end_t, action_hits) AS v_actions,
        arrayFilter(x -> x.1 >= start_t AND x.1 <= end_t, event_hits) AS v_events,
        arrayFilter(x -> x.1 >= start_t AND x.1 <= end_t, outlink_hits) AS v_outlinks,
        arrayFilter(x -> x.1 >= start_t AND x.1 <= end_t, download_hits) AS v_downloads,
        arrayFilter(x -> x.1 >= start_t AND x.1 <= end_t, search_hits) AS v_searches,
        arrayFilter(x -> x.1 >= start_t AND x.1 <= end_t, goal_hits) AS v_goals,
        arraySort((x, i) -> (x.1, x.2, i), v_non_pings, arrayEnumerate(v_non_pings))[1] AS first_hit,
        arraySort((x, i) -> (x.1, x.2, i), v_pageviews, arrayEnumerate(v_pageviews))[1] AS entry_pv,
        arrayReverseSort((x, i) -> (x.1, x.2, -i), v_pageviews, arrayEnumerate(v_pageviews))[1] AS exit_pv
    FROM (
        SELECT site_id, visitor_key, non_pings, pageview_hits, action_hits, event_hits,
            outlink_hits, download_hits, search_hits, goal_hits,
            arrayFilter((x, n) -> n, times, new_visit)[visit] AS start_t,
            arrayFilter((x, n) -> n, times, arrayPushBack(arrayPopFront(new_visit), 1))[visit] AS end_t
        FROM (
            SELECT *,
                arrayMap((d, i) -> i = 1 OR d > ?, arrayDifference(times), arrayEnumerate(times)) AS new_visit
            FROM (
                SELECT site_id, visitor_key,
                    arraySort(groupArray(t)) AS times,
                    groupArrayIf((t, url, referrer_type, referrer_name, ref_host, referrer_keyword, campaign_name, campaign_source, campaign_medium, campaign_keyword, campaign_content, country, region, city, browser, browser_version, os, os_version, device, resolution, lang, toString(visitor_type)), kind != 'ping') AS non_pings,
                    groupArrayIf((t, page, title, page_host, hour, load_ms), kind = 'pageview') AS pageview_hits,
                    groupArrayIf((t, hour, toUInt8(kind = 'pageview'), prop_keys, prop_values), kind IN ('pageview', 'event', 'outlink', 'download', 'search', 'content_interaction')) AS action_hits,
                    groupArrayIf((t, event_category, event_action, event_name), kind = 'event') AS event_hits,
                    groupArrayIf((t, target_url), kind = 'outlink') AS outlink_hits,
                    groupArrayIf((t, target_url), kind = 'download') AS download_hits,
                    groupArrayIf((t, search_keyword, search_category), kind = 'search') AS search_hits,
                    groupArrayIf((t, if(kind = 'goal', toString(goal_id), 'ecommerce'), ifNull(revenue, 0.)), kind IN ('goal', 'ecommerce_order')) AS goal_hits
                FROM (
                    SELECT toUInt32(ts) AS t, toHour(ts, ?) AS hour, site_id, kind, visitor_key, url,
                        if(path(url) = '', '/', path(url)) AS page, title, target_url, lang,
                        extract(url, '^[A-Za-z][A-Za-z0-9+.-]*://(??:[^/??#@]*@)??(\\[[^\\]/??#]*\\]|[^/??#:]*)') AS page_host,
                        extract(referrer, '^[A-Za-z][A-Za-z0-9+.-]*://(??:[^/??#@]*@)??(\\[[^\\]/??#]*\\]|[^/??#:]*)') AS ref_host,
                        event_category, event_action, event_name, search_keyword, search_category,
                        country, region, city, browser, browser_version, os, os_version, device, resolution,
                        referrer_type, referrer_name, referrer_keyword, campaign_name, campaign_source,
                        campaign_medium, campaign_keyword, campaign_content, visitor_type, goal_id, revenue,
                        prop_keys, prop_values,
                        if(isNull(pf_net) AND isNull(pf_srv) AND isNull(pf_tfr) AND isNull(pf_dm1) AND isNull(pf_dm2) AND isNull(pf_onl), -1,
                           toInt32(ifNull(pf_net, 0) + ifNull(pf_srv, 0) + ifNull(pf_tfr, 0) + ifNull(pf_dm1, 0) + ifNull(pf_dm2, 0) + ifNull(pf_onl, 0))) AS load_ms
                    FROM events
                    WHERE site_id = ? AND ts >= toDateTime(?) AND ts < toDateTime(?) AND is_bot = 0
                )
                GROUP BY site_id, visitor_key
            )
        )
        ARRAY JOIN arrayEnumerate(arrayFilter(n -> n, new_visit)) AS visit
    )
    WHERE length(v_non_pings) > 0
)
"#;

/// Where [`VISITS_SELECT`] names its source table.
const VISITS_FROM: &str = "FROM events\n";
/// Where [`VISITS_SELECT`] filters the raw rows, so a slice condition can follow.
const VISITS_FILTER: &str = "AND is_bot = 0\n";

/// [`VISITS_SELECT`] reading the raw events from `events` (`events_local` on a cluster shard),
/// for the visitors in slice `slice` of `slices` (`visitor_key % slices = slice`).
///
/// A visit is one visitor key's hits, so the slices' visits together are exactly the day's,
/// while each statement groups only its share of the day's hits: the statement's memory, which
/// grows with the day's hits (about 1.1 GiB per million on 18.16, docs/capacity.md), is divided
/// by `slices`. With one slice the statement is [`VISITS_SELECT`] itself.
pub fn visits_select(events: &str, slices: u32, slice: u32) -> std::borrow::Cow<'static, str> {
    if events == "events" && slices <= 1 {
        return std::borrow::Cow::Borrowed(VISITS_SELECT);
    }
    let mut sql = VISITS_SELECT.replacen(VISITS_FROM, &format!("FROM {events}\n"), 1);
    if slices > 1 {
        sql = sql.replacen(
            VISITS_FILTER,
            &format!("AND is_bot = 0 AND visitor_key % {slices} = {slice}\n"),
            1,
        );
    }
    std::borrow::Cow::Owned(sql)
}

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

/// The exact number of distinct visitor keys among a group's rows, in a breakdown where a visit
/// is at most one row of each group (one value per visit and dimension, or each distinct value
/// of a visit's actions once).
///
/// `uniqExact(visitor_key)` keeps a hash set per group: over 100,000 groups of a big day it took
/// most of a breakdown's time. A visitor with one visit that day (most of them) is one row of
/// any group, so those rows are simply counted; only the keys of visitors with several visits
/// (`repeat`: the key has more than one row in `visits` for that day and site) are gathered and
/// deduplicated. Reads only `visits`' key columns again, no binds.
fn visitors(visits: &str) -> String {
    format!(
        "countIf(NOT ((day, site_id, visitor_key) IN \
         (SELECT day, site_id, visitor_key FROM {visits} GROUP BY day, site_id, visitor_key HAVING count() > 1) AS repeat)) \
         + length(arrayDistinct(groupArrayIf(visitor_key, repeat)))"
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
         SELECT day, site_id, dv.1 AS dimension, dv.2 AS value, {}, count(), \
         sum(pageviews), sum(actions), sum(bounce), sum(duration) \
         FROM {visits} ARRAY JOIN [{}] AS dv \
         WHERE day = toDate(?) AND has(?, site_id) \
         GROUP BY day, site_id, dimension, value",
        visitors(visits),
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
         SELECT day, site_id, dv.1 AS dimension, dv.2 AS value, {}, count(), \
         sum(dv.3 * dv.4), sum(dv.4), sum(bounce), sum(duration) \
         FROM {visits} ARRAY JOIN arrayConcat({}) AS dv \
         WHERE day = toDate(?) AND has(?, site_id) \
         GROUP BY day, site_id, dimension, value",
        visitors(visits),
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

/// Custom property keys broken down per site and day (`event:props:KEY` rows of
/// `agg_breakdown`): those on the most actions that day, ties by key. A site sending more keys
/// gets an `event:props` row valued [`PROP_KEYS_LEFT_OUT`] instead of the others' rows, so the
/// engine refuses rather than answer for them from nothing (docs/reports.md).
pub const PROP_KEYS_PER_DAY: usize = 100;

/// The dimension of the per-day rows about custom properties as a whole.
pub const PROPS_DIMENSION: &str = "event:props";

/// `value` of the `event:props` row counting every visit with an action (its figures are those
/// of the value `(none)` of a key no action had that day).
pub const PROPS_ALL_ACTIONS: &str = "";

/// `value` of the `event:props` row saying some keys were left out that day (its `events`: how
/// many).
pub const PROP_KEYS_LEFT_OUT: &str = "(keys left out)";

/// What an action without the key counts under: the empty value, which reports show as
/// `(none)`, as Plausible does (and a filter on `(none)` selects).
pub const PROP_NONE: &str = "";

/// `SELECT` of the custom property keys of one site's day with the number of actions carrying
/// each, most first (then by key), at most [`PROP_KEYS_PER_DAY`] + 1 (one more tells whether
/// any was left out). Binds: the date, the site id.
pub fn prop_keys_select(visits: &str) -> String {
    format!(
        "SELECT key FROM ({}) GROUP BY key ORDER BY count() DESC, key LIMIT {}",
        prop_keys_of_day(visits),
        PROP_KEYS_PER_DAY + 1
    )
}

/// `SELECT` of one row (`key`) per custom property key of each action of one site's day
/// (18.16 allows one `ARRAY JOIN` per `SELECT`, hence the subquery). Binds: the date, the site
/// id.
pub fn prop_keys_of_day(visits: &str) -> String {
    format!(
        "SELECT key FROM (SELECT keys FROM {visits} ARRAY JOIN action_prop_keys AS keys \
         WHERE day = toDate(?) AND site_id = ?) ARRAY JOIN keys AS key WHERE key != ''"
    )
}

/// `INSERT` of one site's day broken down by the values of the custom property keys bound (an
/// array), as `event:props:KEY` rows: each visit counts once under each distinct value its
/// actions had (an action without the key under `''`, shown as `(none)`), with the number of
/// such actions as its events, and of such page views as its page views. Visits without actions
/// have no value.
///
/// The actions are joined out and grouped back per visit and value rather than counted with
/// `arrayMap(v -> countEqual(..., v), ..)`: 18.16 drops a subquery's column that only a lambda
/// of the query above uses ("Unknown identifier"), so no lambda here captures more than `key`,
/// which the query above selects. Binds: the keys (array), the date, the site id.
pub fn props_breakdown_insert(target: &str, visits: &str) -> String {
    format!(
        "INSERT INTO {target} (day, site_id, dimension, value, visitors, visits, pageviews, events, bounces, duration) \
         SELECT day, site_id, concat('{PROPS_DIMENSION}:', key) AS dimension, value, {}, count(), \
         sum(np), sum(n), sum(bounce), sum(duration) \
         FROM (SELECT day, site_id, visitor_key, start, bounce, duration, key, value, \
               count() AS n, sum(pv) AS np \
               FROM (SELECT day, site_id, visitor_key, start, bounce, duration, action_pageview, key, \
                     arrayMap((ks, vs) -> if(has(ks, key), vs[indexOf(ks, key)], '{PROP_NONE}'), action_prop_keys, action_prop_values) AS vals \
                     FROM (SELECT day, site_id, visitor_key, start, bounce, duration, action_pageview, \
                           action_prop_keys, action_prop_values, key \
                           FROM {visits} ARRAY JOIN ? AS key \
                           WHERE day = toDate(?) AND site_id = ? AND length(action_pageview) > 0)) \
               ARRAY JOIN vals AS value, action_pageview AS pv \
               GROUP BY day, site_id, visitor_key, start, bounce, duration, key, value) \
         GROUP BY day, site_id, dimension, value",
        visitors(visits),
    )
}

/// `INSERT` of the `event:props` rows of a day's sites: every visit with an action
/// ([`PROPS_ALL_ACTIONS`]). Binds: the date, the site ids (array).
pub fn props_all_actions_insert(target: &str, visits: &str) -> String {
    format!(
        "INSERT INTO {target} (day, site_id, dimension, value, visitors, visits, pageviews, events, bounces, duration) \
         SELECT day, site_id, '{PROPS_DIMENSION}', '{PROPS_ALL_ACTIONS}', {}, count(), \
         sum(pageviews), sum(actions), sum(bounce), sum(duration) \
         FROM {visits} WHERE day = toDate(?) AND has(?, site_id) AND actions > 0 \
         GROUP BY day, site_id",
        visitors(visits),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visits_statement_takes_a_source_and_a_slice() {
        // Each place the statement is changed at is there exactly once.
        assert_eq!(VISITS_SELECT.matches(VISITS_FROM).count(), 1);
        assert_eq!(VISITS_SELECT.matches(VISITS_FILTER).count(), 1);
        assert_eq!(visits_select("events", 1, 0), VISITS_SELECT);
        let sliced = visits_select("events_local", 3, 2);
        assert!(sliced.contains("FROM events_local\n"));
        assert!(sliced.contains("AND is_bot = 0 AND visitor_key % 3 = 2\n"));
        assert_eq!(
            sliced.matches('?').count(),
            VISITS_SELECT.matches('?').count()
        );
    }
}
