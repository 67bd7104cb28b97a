-- Top lists: what a breakdown of a long range reads instead of every day's every value.
--
-- A breakdown by page over 180 days of a busy site sums 9 million `agg_breakdown` rows in 180
-- partitions: over a second on two cores (docs/performance.md). Most of those rows are the long
-- tail, which never reaches a top 100. So the rollup also keeps, per site, day and dimension,
-- the values with the most visitors (at most 1,000, `listed = 1`: their exact sums) and one
-- summary row of the rest (`listed = 0`: how many days had a rest, `tailed`, and the largest
-- visitors, visits, page views and events of any value in it). A value outside a day's list had
-- at most that day's largest rest, so the query engine (src/query/top.rs) can prove from these
-- rows alone that no value it did not see could enter the top rows it answers with; when it
-- cannot prove it, it reads `agg_breakdown` as before. Nothing here is an estimate.
--
-- `agg_top` is partitioned by day and swapped with the other aggregates. Reading 180 small
-- partitions costs more than their rows, so whole weeks whose days are final (their raw events
-- gone, so never recomputed) are also summed into `agg_top_week`, one partition per week
-- (Monday, the site's local date), each written once by `REPLACE PARTITION`. Both live as long
-- as the other aggregates: a day of `agg_top` 180 days, a week until its Monday is 180 days old.
-- On a list row `tailed` counts the days (1 in `agg_top`) on which the value was listed and the
-- day had a rest; on a summary row, the days that had one. Metrics are UInt64 in both tables
-- (a week's sums), so that the two can be read with one UNION ALL.
-- Made afresh: should this migration stop between its statements, it runs again from here
-- (no other code writes these tables before the migration is recorded as applied).
DROP TABLE IF EXISTS agg_top;
DROP TABLE IF EXISTS agg_top_week;
CREATE TABLE IF NOT EXISTS agg_top (
    day Date,
    site_id UInt32,
    dimension String,
    listed UInt8,
    value String,
    visitors UInt64,
    visits UInt64,
    pageviews UInt64,
    events UInt64,
    bounces UInt64,
    duration UInt64,
    tailed UInt64,
    tail_visitors UInt64,
    tail_visits UInt64,
    tail_pageviews UInt64,
    tail_events UInt64
) ENGINE = MergeTree
PARTITION BY day
ORDER BY (site_id, dimension, listed, value);

CREATE TABLE IF NOT EXISTS agg_top_week (
    week Date,
    site_id UInt32,
    dimension String,
    listed UInt8,
    value String,
    visitors UInt64,
    visits UInt64,
    pageviews UInt64,
    events UInt64,
    bounces UInt64,
    duration UInt64,
    tailed UInt64,
    tail_visitors UInt64,
    tail_visits UInt64,
    tail_pageviews UInt64,
    tail_events UInt64
) ENGINE = MergeTree
PARTITION BY week
ORDER BY (site_id, dimension, listed, value);

-- The days already rolled up get their lists now (the same statements as
-- `tally::rollup::sql::top_list_inserts`, over every day instead of one), so that the engine
-- never meets a day with a breakdown but no list. Weeks are summed by the next rollup.
INSERT INTO agg_top (day, site_id, dimension, listed, value, visitors, visits, pageviews, events, bounces, duration, tailed, tail_visitors, tail_visits, tail_pageviews, tail_events)
SELECT day, site_id, dimension, 1, r.1, r.2, r.3, r.4, r.5, r.6, r.7, toUInt64(theta > 0), 0, 0, 0, 0
FROM (
    SELECT day, site_id, dimension,
        groupArray((value, visitors, visits, pageviews, events, bounces, duration)) AS rows,
        arrayElement(arrayReverseSort(arrayMap(x -> x.2, rows)), 1001) AS theta
    FROM agg_breakdown
    GROUP BY day, site_id, dimension
)
ARRAY JOIN rows AS r
WHERE r.2 > theta;

INSERT INTO agg_top (day, site_id, dimension, listed, value, visitors, visits, pageviews, events, bounces, duration, tailed, tail_visitors, tail_visits, tail_pageviews, tail_events)
SELECT day, site_id, dimension, 0, '', 0, 0, 0, 0, 0, 0, 1,
    arrayReduce('max', arrayMap(x -> x.1, rest)), arrayReduce('max', arrayMap(x -> x.2, rest)),
    arrayReduce('max', arrayMap(x -> x.3, rest)), arrayReduce('max', arrayMap(x -> x.4, rest))
FROM (
    SELECT day, site_id, dimension,
        groupArray((visitors, visits, pageviews, events)) AS rows,
        arrayElement(arrayReverseSort(arrayMap(x -> x.1, rows)), 1001) AS theta,
        arrayFilter(x -> x.1 <= theta, rows) AS rest
    FROM agg_breakdown
    GROUP BY day, site_id, dimension
)
WHERE theta > 0;
