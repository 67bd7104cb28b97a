//! The anonymised event: one row of the raw `events` table, and nothing that identifies a person.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// What a hit was, as stored in the `kind` column (`Enum8`, values fixed by the schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum Kind {
    /// A page view.
    Pageview = 1,
    /// A custom event (`e_c`, `e_a`, ...).
    Event = 2,
    /// A click on a link to another site (`link`).
    Outlink = 3,
    /// A click on a download (`download`).
    Download = 4,
    /// A site search (`search`).
    Search = 5,
    /// A heartbeat while the page stays open (`ping=1`), the source of dwell time.
    Ping = 6,
    /// A content block was shown (`c_n` without `c_i`).
    ContentImpression = 7,
    /// A content block was interacted with (`c_n` with `c_i`).
    ContentInteraction = 8,
    /// A manual goal conversion (`idgoal` > 0).
    Goal = 9,
    /// An ecommerce order (`idgoal=0` with `ec_id`).
    EcommerceOrder = 10,
    /// An ecommerce cart update (`idgoal=0` without `ec_id`).
    CartUpdate = 11,
}

/// Every kind, in schema order.
pub const KINDS: [Kind; 11] = [
    Kind::Pageview,
    Kind::Event,
    Kind::Outlink,
    Kind::Download,
    Kind::Search,
    Kind::Ping,
    Kind::ContentImpression,
    Kind::ContentInteraction,
    Kind::Goal,
    Kind::EcommerceOrder,
    Kind::CartUpdate,
];

/// Whether the visitor had been to the site before, as the tracker itself says (`_idn`,
/// `_idvc`, `_viewts`); stored as `visitor_type` (`Enum8`). Never derived by linking rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum VisitorType {
    /// The tracker said nothing (cookies off, server-side sender).
    Unknown = 0,
    /// First visit.
    New = 1,
    /// A visit before this one.
    Returning = 2,
}

impl Kind {
    /// The schema's name of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pageview => "pageview",
            Kind::Event => "event",
            Kind::Outlink => "outlink",
            Kind::Download => "download",
            Kind::Search => "search",
            Kind::Ping => "ping",
            Kind::ContentImpression => "content_impression",
            Kind::ContentInteraction => "content_interaction",
            Kind::Goal => "goal",
            Kind::EcommerceOrder => "ecommerce_order",
            Kind::CartUpdate => "cart_update",
        }
    }
}

/// One stored hit. Field order is the column order of `events` (`schema/0003_events_utc_kinds.sql`, then the columns later migrations append) (RowBinary is
/// positional); `tests` in `store` check the two agree.
#[derive(Debug, Clone, Default, PartialEq, Row, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    /// Unix seconds; the column is `DateTime('UTC')`, so days are UTC days on every server.
    pub ts: u32,
    /// Matomo `idsite`.
    pub site_id: u32,
    /// [`Kind`] as its `Enum8` value.
    pub kind: i8,
    /// Keyed, rotating hash standing in for a visitor (see `enrich::visitor`).
    pub visitor_key: u64,
    /// Page view id from the tracker, ties pings and clicks to their page view.
    pub pv_id: String,
    /// Page URL (cleaned).
    pub url: String,
    /// Page title.
    pub title: String,
    /// Referrer URL (cleaned).
    pub referrer: String,
    /// Link or download target, for outlinks and downloads.
    pub target_url: String,
    /// The truncated client address, as text.
    pub ip: String,
    /// `new_visit=1` was sent.
    pub new_visit: u8,
    /// `_idvc`: the browser's own count of visits, 0 when not sent.
    pub visit_count: u32,
    /// Whole days since the previous visit (`_viewts`), when sent. Days, not a timestamp, so the
    /// value cannot be matched against another day's rows.
    pub days_since_last_visit: Option<u16>,
    /// Screen size, `WxH`.
    pub resolution: String,
    /// Visitor's local time of day, `HH:MM:SS`.
    pub local_time: String,
    /// Preferred language (first `Accept-Language` tag or `lang`), lower-case.
    pub lang: String,
    /// Event category.
    pub event_category: String,
    /// Event action.
    pub event_action: String,
    /// Event name.
    pub event_name: String,
    /// Event value.
    pub event_value: Option<f64>,
    /// Site-search keyword.
    pub search_keyword: String,
    /// Site-search category.
    pub search_category: String,
    /// Site-search result count.
    pub search_count: Option<u32>,
    /// Flagged as a bot (kept only with `privacy.keep_bots`).
    pub is_bot: u8,
    /// ISO country code.
    pub country: String,
    /// Region (subdivision) code.
    pub region: String,
    /// City name.
    pub city: String,
    /// Browser name.
    pub browser: String,
    /// Browser major version.
    pub browser_version: String,
    /// Operating system name.
    pub os: String,
    /// Operating system version.
    pub os_version: String,
    /// `desktop`, `mobile`, `tablet`, `bot` or `other`.
    pub device: String,
    /// Channel: `direct`, `website`, `search`, `social`, `campaign`.
    pub referrer_type: String,
    /// Search engine, social network, website host or campaign name.
    pub referrer_name: String,
    /// Search keyword, where the referrer reveals it.
    pub referrer_keyword: String,
    /// Campaign name (`utm_campaign`, `mtm_campaign`, `pk_campaign`).
    pub campaign_name: String,
    /// Campaign source.
    pub campaign_source: String,
    /// Campaign medium.
    pub campaign_medium: String,
    /// Campaign keyword.
    pub campaign_keyword: String,
    /// Campaign content.
    pub campaign_content: String,
    /// [`VisitorType`] as its `Enum8` value.
    pub visitor_type: i8,
    /// Device model from client hints (`Sec-CH-UA-Model`, `uadata.model`), e.g. `Pixel 8`.
    pub device_model: String,
    /// Content name (`c_n`).
    pub content_name: String,
    /// Content piece (`c_p`).
    pub content_piece: String,
    /// Content target (`c_t`).
    pub content_target: String,
    /// Content interaction (`c_i`), e.g. `click`.
    pub content_interaction: String,
    /// Goal converted (`idgoal` > 0); 0 otherwise.
    pub goal_id: u32,
    /// Revenue of a goal conversion or an order (`revenue`; for carts, the cart total).
    pub revenue: Option<f64>,
    /// Order id (`ec_id`) as a keyed hash under the day's secret: duplicates of one order
    /// within a day can be told apart from two orders, but the shop's own order number, which
    /// would tie analytics to a customer record, is never stored.
    pub order_key: u64,
    /// Order subtotal (`ec_st`).
    pub ec_subtotal: Option<f64>,
    /// Order tax (`ec_tx`).
    pub ec_tax: Option<f64>,
    /// Order shipping (`ec_sh`).
    pub ec_shipping: Option<f64>,
    /// Order discount (`ec_dt`).
    pub ec_discount: Option<f64>,
    /// Ecommerce items (`ec_items`): SKU.
    pub item_skus: Vec<String>,
    /// Item names.
    pub item_names: Vec<String>,
    /// Item categories (several joined by `/`).
    pub item_categories: Vec<String>,
    /// Item prices.
    pub item_prices: Vec<f64>,
    /// Item quantities.
    pub item_quantities: Vec<u32>,
    /// Page performance, milliseconds: network (`pf_net`).
    pub pf_net: Option<u32>,
    /// Server time (`pf_srv`).
    pub pf_srv: Option<u32>,
    /// Transfer time (`pf_tfr`).
    pub pf_tfr: Option<u32>,
    /// DOM processing (`pf_dm1`).
    pub pf_dm1: Option<u32>,
    /// DOM completion (`pf_dm2`).
    pub pf_dm2: Option<u32>,
    /// `onload` time (`pf_onl`).
    pub pf_onl: Option<u32>,
    /// Custom dimension ids (`dimensionN`), parallel to `dimension_values`.
    pub dimension_ids: Vec<u16>,
    /// Custom dimension values.
    pub dimension_values: Vec<String>,
    /// Conversion attribution: first campaign name the tracker remembered (`_rcn`).
    pub attribution_campaign: String,
    /// Campaign keyword (`_rck`).
    pub attribution_keyword: String,
    /// Referrer URL at attribution time (`_ref`, cleaned).
    pub attribution_referrer: String,
    /// Whole days between attribution (`_refts`) and the conversion: days, not a timestamp,
    /// for the same reason as `days_since_last_visit`.
    pub attribution_days: Option<u16>,
    /// Custom property keys (Plausible's `props`; `schema/0010_event_props.sql`), parallel to
    /// `prop_values`. Bounded in count and size on arrival.
    pub prop_keys: Vec<String>,
    /// Custom property values, as text (numbers and booleans written out).
    pub prop_values: Vec<String>,
    /// How far down the page the visitor scrolled, percent (Plausible's engagement `sd`).
    pub scroll_depth: Option<u8>,
    /// The spool batch this row was written in (`schema/0012_spool_batch.sql`): lets the writer
    /// recognise a batch ClickHouse already has when an insert's outcome was unknown. Set by the
    /// writer, 0 until then.
    pub spool_batch: u64,
}

impl Event {
    /// This event's kind. Events are only built from a [`Kind`], so the value is always valid.
    pub fn kind(&self) -> Option<Kind> {
        KINDS.into_iter().find(|k| *k as i8 == self.kind)
    }
}
