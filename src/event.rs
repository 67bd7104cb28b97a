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
        }
    }
}

/// One stored hit. Field order is the column order of `schema/0001_events.sql` (RowBinary is
/// positional); `tests` in `store` check the two agree.
#[derive(Debug, Clone, Default, PartialEq, Row, Serialize, Deserialize)]
pub struct Event {
    /// Unix seconds, UTC.
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
}

impl Event {
    /// This event's kind. Events are only built from a [`Kind`], so the value is always valid.
    pub fn kind(&self) -> Option<Kind> {
        [
            Kind::Pageview,
            Kind::Event,
            Kind::Outlink,
            Kind::Download,
            Kind::Search,
            Kind::Ping,
        ]
        .into_iter()
        .find(|k| *k as i8 == self.kind)
    }
}
