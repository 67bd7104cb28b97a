-- Reports: visits computed from the raw events, and the daily aggregates that outlive them.
--
-- Every table is partitioned by `day`, the site's *local* date (each site has a time zone), so
-- the rollup (src/rollup) can swap a whole recomputed day in atomically with
-- `ALTER TABLE .. REPLACE PARTITION .. FROM` a staging table of the same structure, and the
-- pruner can drop whole days. `visits` holds one row per visit and so lives as long as the raw
-- events (7 days); the `agg_*` tables hold counts only, no visitor key, and live 180 days.
-- No TTL, CODEC or LowCardinality: this runs on ClickHouse 18.16 as well as current releases.

-- One row per visit: a run of one visitor key's hits on one site with no gap longer than the
-- site's visit timeout, cut at the site's local midnight. The arrays hold what happened inside
-- the visit, so reports and filters on pages, events and searches need no join back to
-- `events`.
CREATE TABLE IF NOT EXISTS visits (
    day Date,
    site_id UInt32,
    visitor_key UInt64,
    start DateTime('UTC'),
    start_hour UInt8,
    duration UInt32,
    pageviews UInt32,
    actions UInt32,
    interactions UInt32,
    bounce UInt8,
    entry_page String,
    exit_page String,
    entry_hostname String,
    exit_hostname String,
    channel String,
    source String,
    referrer_type String,
    referrer_host String,
    referrer_keyword String,
    campaign_name String,
    campaign_source String,
    campaign_medium String,
    campaign_keyword String,
    campaign_content String,
    country String,
    region String,
    city String,
    browser String,
    browser_version String,
    os String,
    os_version String,
    device String,
    resolution String,
    lang String,
    visitor_type String,
    pv_pages Array(String),
    pv_titles Array(String),
    pv_hosts Array(String),
    pv_hours Array(UInt8),
    pv_load_ms Array(Int32),
    action_hours Array(UInt8),
    ev_categories Array(String),
    ev_actions Array(String),
    ev_names Array(String),
    outlinks Array(String),
    downloads Array(String),
    searches Array(String),
    search_categories Array(String),
    goals Array(String),
    revenue Float64
) ENGINE = MergeTree
PARTITION BY day
ORDER BY (site_id, start, visitor_key);

-- Per site and local day: the day's totals. `visitors` is the number of distinct visitor keys
-- of that day (exact); keys change every day, so visitors over several days are the sum of
-- these (see docs/reports.md). `duration` is the sum of the visits' durations in seconds.
CREATE TABLE IF NOT EXISTS agg_daily (
    day Date,
    site_id UInt32,
    visitors UInt32,
    visits UInt32,
    pageviews UInt32,
    events UInt32,
    bounces UInt32,
    duration UInt64
) ENGINE = MergeTree
PARTITION BY day
ORDER BY (site_id, day);

-- The same metrics per local hour of the day, for intraday charts: visits, bounces and duration
-- by the hour the visit began, page views and events by their own hour, visitors by every hour
-- they did something in.
CREATE TABLE IF NOT EXISTS agg_hourly (
    day Date,
    site_id UInt32,
    hour UInt8,
    visitors UInt32,
    visits UInt32,
    pageviews UInt32,
    events UInt32,
    bounces UInt32,
    duration UInt64
) ENGINE = MergeTree
PARTITION BY day
ORDER BY (site_id, day, hour);

-- The same metrics per value of one dimension (`dimension` is the Stats API's name, such as
-- `event:page` or `visit:country`). For a dimension with one value per visit (entry page,
-- channel, country, ...) the rows of a day add up to the day's visits; for one with several
-- (pages, events, searches) a visit counts once under each value it had.
CREATE TABLE IF NOT EXISTS agg_breakdown (
    day Date,
    site_id UInt32,
    dimension String,
    value String,
    visitors UInt32,
    visits UInt32,
    pageviews UInt32,
    events UInt32,
    bounces UInt32,
    duration UInt64
) ENGINE = MergeTree
PARTITION BY day
ORDER BY (site_id, dimension, day, value);
