-- Raw, anonymised hits: one row per tracking request. Partitioned by day so that the pruner
-- removes whole days with DROP PARTITION (instant, no mutation) after the retention period.
-- Column order is the order of `Event` in src/event.rs (RowBinary inserts are positional).
-- No TTL/CODEC/LowCardinality: this must run on ClickHouse 18.16 as well as current releases.
CREATE TABLE IF NOT EXISTS events (
    ts DateTime,
    site_id UInt32,
    kind Enum8('pageview' = 1, 'event' = 2, 'outlink' = 3, 'download' = 4, 'search' = 5, 'ping' = 6),
    visitor_key UInt64,
    pv_id String,
    url String,
    title String,
    referrer String,
    target_url String,
    ip String,
    new_visit UInt8,
    visit_count UInt32,
    days_since_last_visit Nullable(UInt16),
    resolution String,
    local_time String,
    lang String,
    event_category String,
    event_action String,
    event_name String,
    event_value Nullable(Float64),
    search_keyword String,
    search_category String,
    search_count Nullable(UInt32),
    is_bot UInt8,
    country String,
    region String,
    city String,
    browser String,
    browser_version String,
    os String,
    os_version String,
    device String,
    referrer_type String,
    referrer_name String,
    referrer_keyword String,
    campaign_name String,
    campaign_source String,
    campaign_medium String,
    campaign_keyword String,
    campaign_content String
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (site_id, ts);
