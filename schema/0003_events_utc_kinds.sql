-- Rebuilds `events` once: times in UTC whatever the server's time zone, the request kinds of
-- Matomo's tracking API (content, goals, ecommerce), and the fields reports need (new or
-- returning, client-hint device model, ecommerce amounts and items, page performance, custom
-- dimensions, conversion attribution).
--
-- A plain `DateTime` column is read and partitioned in the *server's* time zone: on a server
-- set to Pacific/Kiritimati, `toYYYYMMDD(ts)` put 23:30 UTC into the next day's partition, so
-- the pruner's "7 whole UTC days" meant something else on every server. `DateTime('UTC')` fixes
-- the zone in the column itself. The partition key cannot be altered in place, so the table is
-- copied: create the new one, copy the rows (at most the 7 days of raw retention), swap the
-- names, drop the old one. Every step can be repeated after an interruption: a second run
-- copies the (already migrated) rows into a fresh table and swaps again.
DROP TABLE IF EXISTS events_before_0003;
DROP TABLE IF EXISTS events_0003;
CREATE TABLE events_0003 (
    ts DateTime('UTC'),
    site_id UInt32,
    kind Enum8('pageview' = 1, 'event' = 2, 'outlink' = 3, 'download' = 4, 'search' = 5, 'ping' = 6, 'content_impression' = 7, 'content_interaction' = 8, 'goal' = 9, 'ecommerce_order' = 10, 'cart_update' = 11),
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
    campaign_content String,
    visitor_type Enum8('unknown' = 0, 'new' = 1, 'returning' = 2),
    device_model String,
    content_name String,
    content_piece String,
    content_target String,
    content_interaction String,
    goal_id UInt32,
    revenue Nullable(Float64),
    order_key UInt64,
    ec_subtotal Nullable(Float64),
    ec_tax Nullable(Float64),
    ec_shipping Nullable(Float64),
    ec_discount Nullable(Float64),
    item_skus Array(String),
    item_names Array(String),
    item_categories Array(String),
    item_prices Array(Float64),
    item_quantities Array(UInt32),
    pf_net Nullable(UInt32),
    pf_srv Nullable(UInt32),
    pf_tfr Nullable(UInt32),
    pf_dm1 Nullable(UInt32),
    pf_dm2 Nullable(UInt32),
    pf_onl Nullable(UInt32),
    dimension_ids Array(UInt16),
    dimension_values Array(String),
    attribution_campaign String,
    attribution_keyword String,
    attribution_referrer String,
    attribution_days Nullable(UInt16)
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (site_id, ts);
INSERT INTO events_0003 (ts, site_id, kind, visitor_key, pv_id, url, title, referrer, target_url, ip, new_visit, visit_count, days_since_last_visit, resolution, local_time, lang, event_category, event_action, event_name, event_value, search_keyword, search_category, search_count, is_bot, country, region, city, browser, browser_version, os, os_version, device, referrer_type, referrer_name, referrer_keyword, campaign_name, campaign_source, campaign_medium, campaign_keyword, campaign_content)
SELECT ts, site_id, kind, visitor_key, pv_id, url, title, referrer, target_url, ip, new_visit, visit_count, days_since_last_visit, resolution, local_time, lang, event_category, event_action, event_name, event_value, search_keyword, search_category, search_count, is_bot, country, region, city, browser, browser_version, os, os_version, device, referrer_type, referrer_name, referrer_keyword, campaign_name, campaign_source, campaign_medium, campaign_keyword, campaign_content FROM events;
RENAME TABLE events TO events_before_0003, events_0003 TO events;
DROP TABLE events_before_0003;
