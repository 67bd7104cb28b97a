//! The names a Stats API query is made of: its [`Metric`]s and [`Dimension`]s, what each
//! belongs to ([`MetricScope`], [`Scope`]), and why Plausible's names that tally lacks are
//! refused.

use super::date_range::TimeGrain;

/// Where a metric can be counted: on single events, on whole visits, or either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricScope {
    /// Counted over events (`pageviews`, `events`).
    Event,
    /// Counted over whole visits (`bounce_rate`, `visit_duration`, `views_per_visit`).
    Visit,
    /// Counted over either (`visitors`, `visits`, `percentage`, `conversion_rate`).
    Either,
}

/// A metric tally computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// `visitors`: distinct visitors (by tally's daily visitor key).
    Visitors,
    /// `visits`: visits (sessions).
    Visits,
    /// `pageviews`: page views.
    Pageviews,
    /// `views_per_visit`: page views divided by visits (a float).
    ViewsPerVisit,
    /// `bounce_rate`: the percentage of visits with a single page view (a float).
    BounceRate,
    /// `visit_duration`: the mean visit duration in seconds.
    VisitDuration,
    /// `events`: events of any kind, page views included.
    Events,
    /// `percentage`: a row's share of all visitors, in percent (a float).
    Percentage,
    /// `conversion_rate`: the percentage of visitors who completed the goal (a float).
    ConversionRate,
}

impl Metric {
    /// Every metric, in the order of the reference.
    pub const ALL: [Metric; 9] = [
        Metric::Visitors,
        Metric::Visits,
        Metric::Pageviews,
        Metric::ViewsPerVisit,
        Metric::BounceRate,
        Metric::VisitDuration,
        Metric::Events,
        Metric::Percentage,
        Metric::ConversionRate,
    ];

    /// The request's name of the metric.
    pub fn as_str(&self) -> &'static str {
        match self {
            Metric::Visitors => "visitors",
            Metric::Visits => "visits",
            Metric::Pageviews => "pageviews",
            Metric::ViewsPerVisit => "views_per_visit",
            Metric::BounceRate => "bounce_rate",
            Metric::VisitDuration => "visit_duration",
            Metric::Events => "events",
            Metric::Percentage => "percentage",
            Metric::ConversionRate => "conversion_rate",
        }
    }

    /// The metric of a request name.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// Where it is counted (Plausible's `TableDecider`).
    pub fn scope(&self) -> MetricScope {
        match self {
            Metric::Pageviews | Metric::Events => MetricScope::Event,
            Metric::ViewsPerVisit | Metric::BounceRate | Metric::VisitDuration => {
                MetricScope::Visit
            }
            Metric::Visitors | Metric::Visits | Metric::Percentage | Metric::ConversionRate => {
                MetricScope::Either
            }
        }
    }
}

/// Why a metric of Plausible's is not one of tally's.
pub(super) fn unsupported_metric(name: &str) -> Option<&'static str> {
    Some(match name {
        "scroll_depth" => "no scroll depth is recorded",
        "time_on_page" => "time is reported per visit, as visit_duration",
        "total_revenue" | "average_revenue" => "revenue is not reported",
        "group_conversion_rate" => "use conversion_rate",
        "exit_rate" => "exit rates are not computed",
        _ => return None,
    })
}

/// What a dimension's values belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One event (hit): its page, name, title, ... (`event:*`).
    Event,
    /// The whole visit: how it came, from where, with what (`visit:*`). Most are the same on
    /// every event of the visit; see [`Dimension::whole_visit_only`] for those that are not.
    Visit,
    /// A time bucket (`time`, `time:*`).
    Time,
}

/// A dimension: what results are grouped and filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// `event:page`: the page's path.
    Page,
    /// `event:name`: the event's name; Matomo's event name (`e_n`) for events, `pageview`
    /// for page views.
    EventName,
    /// `event:goal`: the goal the event completed.
    Goal,
    /// `event:hostname`: the host name of the page's URL.
    Hostname,
    /// `event:title` (tally's): the page title.
    Title,
    /// `event:category` (tally's): Matomo's event category (`e_c`).
    Category,
    /// `event:action` (tally's): Matomo's event action (`e_a`).
    Action,
    /// `event:outlink` (tally's): the URL of an outbound link clicked.
    Outlink,
    /// `event:download` (tally's): the URL of a download.
    Download,
    /// `event:search` (tally's): a site-search keyword.
    Search,
    /// `event:search_category` (tally's): a site-search category.
    SearchCategory,
    /// `event:page_load` (tally's): the page-load-time bucket of a page view.
    PageLoad,
    /// `visit:entry_page`: the path of the visit's first page.
    EntryPage,
    /// `visit:exit_page`: the path of the visit's last page.
    ExitPage,
    /// `visit:entry_page_hostname`: the host name of the visit's first page.
    EntryPageHostname,
    /// `visit:exit_page_hostname`: the host name of the visit's last page.
    ExitPageHostname,
    /// `visit:source`: where the visit came from (a search engine, a site, a campaign source).
    Source,
    /// `visit:referrer`: the referrer URL of the visit's first page.
    Referrer,
    /// `visit:channel`: the acquisition channel (`Organic Search`, `Direct`, ...).
    Channel,
    /// `visit:utm_source`.
    UtmSource,
    /// `visit:utm_medium`.
    UtmMedium,
    /// `visit:utm_campaign`.
    UtmCampaign,
    /// `visit:utm_term`.
    UtmTerm,
    /// `visit:utm_content`.
    UtmContent,
    /// `visit:country`: ISO 3166-1 alpha-2 code.
    Country,
    /// `visit:region`: ISO 3166-2 code of the region.
    Region,
    /// `visit:city`: the city's name (tally has no GeoNames ids).
    City,
    /// `visit:country_name`: the country's English name.
    CountryName,
    /// `visit:region_name`: the region's name.
    RegionName,
    /// `visit:city_name`: the city's name.
    CityName,
    /// `visit:device`: the device type (`Desktop`, `Mobile`, ...).
    Device,
    /// `visit:browser`.
    Browser,
    /// `visit:browser_version`.
    BrowserVersion,
    /// `visit:os`.
    Os,
    /// `visit:os_version`.
    OsVersion,
    /// `visit:screen`: the screen size class.
    Screen,
    /// `visit:visitor_type` (tally's): `new` or `returning`, as the tracker says.
    VisitorType,
    /// `visit:language` (tally's): the browser's language.
    Language,
    /// `visit:referrer_keyword` (tally's): the search keyword of a visit from a search engine
    /// that still passes it (or a campaign's keyword).
    ReferrerKeyword,
    /// `time`: a time bucket chosen from the range's length ([`TimeGrain::for_span`]).
    Time,
    /// `time:hour`.
    TimeHour,
    /// `time:day`.
    TimeDay,
    /// `time:week`.
    TimeWeek,
    /// `time:month`.
    TimeMonth,
    /// `event:props:KEY`: the value of one custom property of the event (Plausible's
    /// `props`), `(none)` for an event without it. The key is the query's
    /// ([`super::request::Query::prop_key`]): one custom property per query. Not in
    /// [`Dimension::ALL`], since its name has the key in it ([`prop_key`]).
    Prop,
}

impl Dimension {
    /// Every dimension, in the order of the reference.
    pub const ALL: [Dimension; 44] = [
        Dimension::Page,
        Dimension::EventName,
        Dimension::Goal,
        Dimension::Hostname,
        Dimension::Title,
        Dimension::Category,
        Dimension::Action,
        Dimension::Outlink,
        Dimension::Download,
        Dimension::Search,
        Dimension::SearchCategory,
        Dimension::PageLoad,
        Dimension::EntryPage,
        Dimension::ExitPage,
        Dimension::EntryPageHostname,
        Dimension::ExitPageHostname,
        Dimension::Source,
        Dimension::Referrer,
        Dimension::Channel,
        Dimension::UtmSource,
        Dimension::UtmMedium,
        Dimension::UtmCampaign,
        Dimension::UtmTerm,
        Dimension::UtmContent,
        Dimension::Country,
        Dimension::Region,
        Dimension::City,
        Dimension::CountryName,
        Dimension::RegionName,
        Dimension::CityName,
        Dimension::Device,
        Dimension::Browser,
        Dimension::BrowserVersion,
        Dimension::Os,
        Dimension::OsVersion,
        Dimension::Screen,
        Dimension::VisitorType,
        Dimension::Language,
        Dimension::ReferrerKeyword,
        Dimension::Time,
        Dimension::TimeHour,
        Dimension::TimeDay,
        Dimension::TimeWeek,
        Dimension::TimeMonth,
    ];

    /// The request's name of the dimension.
    pub fn as_str(&self) -> &'static str {
        match self {
            Dimension::Page => "event:page",
            Dimension::EventName => "event:name",
            Dimension::Goal => "event:goal",
            Dimension::Hostname => "event:hostname",
            Dimension::Title => "event:title",
            Dimension::Category => "event:category",
            Dimension::Action => "event:action",
            Dimension::Outlink => "event:outlink",
            Dimension::Download => "event:download",
            Dimension::Search => "event:search",
            Dimension::SearchCategory => "event:search_category",
            Dimension::PageLoad => "event:page_load",
            Dimension::EntryPage => "visit:entry_page",
            Dimension::ExitPage => "visit:exit_page",
            Dimension::EntryPageHostname => "visit:entry_page_hostname",
            Dimension::ExitPageHostname => "visit:exit_page_hostname",
            Dimension::Source => "visit:source",
            Dimension::Referrer => "visit:referrer",
            Dimension::Channel => "visit:channel",
            Dimension::UtmSource => "visit:utm_source",
            Dimension::UtmMedium => "visit:utm_medium",
            Dimension::UtmCampaign => "visit:utm_campaign",
            Dimension::UtmTerm => "visit:utm_term",
            Dimension::UtmContent => "visit:utm_content",
            Dimension::Country => "visit:country",
            Dimension::Region => "visit:region",
            Dimension::City => "visit:city",
            Dimension::CountryName => "visit:country_name",
            Dimension::RegionName => "visit:region_name",
            Dimension::CityName => "visit:city_name",
            Dimension::Device => "visit:device",
            Dimension::Browser => "visit:browser",
            Dimension::BrowserVersion => "visit:browser_version",
            Dimension::Os => "visit:os",
            Dimension::OsVersion => "visit:os_version",
            Dimension::Screen => "visit:screen",
            Dimension::VisitorType => "visit:visitor_type",
            Dimension::Language => "visit:language",
            Dimension::ReferrerKeyword => "visit:referrer_keyword",
            Dimension::Time => "time",
            Dimension::TimeHour => "time:hour",
            Dimension::TimeDay => "time:day",
            Dimension::TimeWeek => "time:week",
            Dimension::TimeMonth => "time:month",
            Dimension::Prop => PROPS,
        }
    }

    /// The dimension of a request name (`event:props:KEY` is [`Dimension::Prop`]).
    pub fn from_name(name: &str) -> Option<Dimension> {
        if prop_key(name).is_some() {
            return Some(Dimension::Prop);
        }
        Dimension::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The request's name of the dimension, with the query's property key for
    /// [`Dimension::Prop`].
    pub fn name_with(&self, prop_key: Option<&str>) -> String {
        match (self, prop_key) {
            (Dimension::Prop, Some(key)) => format!("{PROPS}:{key}"),
            _ => self.as_str().to_string(),
        }
    }

    /// What its values belong to.
    pub fn scope(&self) -> Scope {
        let name = self.as_str();
        if name.starts_with("event:") {
            Scope::Event
        } else if name.starts_with("visit:") {
            Scope::Visit
        } else {
            Scope::Time
        }
    }

    /// Whether only the visit as a whole has this value (its entry or exit page), so that it
    /// cannot be paired with counts of single events (Plausible's session-only dimensions).
    pub fn whole_visit_only(&self) -> bool {
        matches!(
            self,
            Dimension::EntryPage
                | Dimension::ExitPage
                | Dimension::EntryPageHostname
                | Dimension::ExitPageHostname
        )
    }

    /// The grain of a time dimension: `Some(None)` for `time` (chosen from the range),
    /// `None` for other dimensions.
    pub fn time_grain(&self) -> Option<Option<TimeGrain>> {
        match self {
            Dimension::Time => Some(None),
            Dimension::TimeHour => Some(Some(TimeGrain::Hour)),
            Dimension::TimeDay => Some(Some(TimeGrain::Day)),
            Dimension::TimeWeek => Some(Some(TimeGrain::Week)),
            Dimension::TimeMonth => Some(Some(TimeGrain::Month)),
            _ => None,
        }
    }

    /// The time dimension of a grain.
    pub fn of_grain(grain: TimeGrain) -> Dimension {
        match grain {
            TimeGrain::Hour => Dimension::TimeHour,
            TimeGrain::Day => Dimension::TimeDay,
            TimeGrain::Week => Dimension::TimeWeek,
            TimeGrain::Month => Dimension::TimeMonth,
        }
    }
}

/// The common part of the custom properties' dimension names (`event:props:KEY`), and the name
/// of their stored rows (`crate::rollup::sql::PROPS_DIMENSION`).
pub const PROPS: &str = "event:props";

/// Longest property key a query may name (the ingest keeps none longer).
pub const MAX_PROP_KEY_CHARS: usize = 300;

/// The key of a custom property dimension `event:props:KEY`, if `name` is one with a valid key.
pub fn prop_key(name: &str) -> Option<&str> {
    let key = name.strip_prefix(PROPS)?.strip_prefix(':')?;
    (!key.is_empty() && key.chars().count() <= MAX_PROP_KEY_CHARS).then_some(key)
}

/// Why a dimension of Plausible's is not one of tally's.
pub(super) fn unsupported_dimension(name: &str) -> Option<&'static str> {
    if name.starts_with("event:props:") {
        return Some(if name.len() == "event:props:".len() {
            "give the property's name after event:props:"
        } else {
            "a property name is at most 300 characters"
        });
    }
    Some(match name {
        "time:minute" => "tally groups by the hour at the finest (time:hour)",
        _ => return None,
    })
}
