//! The dimensions the rollup aggregates, and how each is read from a row of `visits`.
//!
//! One list serves both the rollup (which writes a row of `agg_breakdown` per day, site,
//! dimension and value) and the query engine (which reads the same expressions from `visits`
//! when a question needs the per-visit rows), so the two can never disagree about what a
//! dimension means.

/// How a dimension's values come out of one visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Exactly one value per visit: an SQL expression over the `visits` row.
    PerVisit(&'static str),
    /// Any number of values per visit (a page per page view, ...): an SQL expression of type
    /// `Array(String)` over the `visits` row. A visit counts once under each distinct value.
    PerAction {
        /// The array expression.
        array: &'static str,
        /// Whether each element is a page view (so it counts as a page view as well as an
        /// event), as for pages and titles.
        pageview: bool,
    },
}

/// One aggregated dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimension {
    /// The Stats API's name, as stored in `agg_breakdown.dimension`.
    pub name: &'static str,
    /// Where its values come from.
    pub values: Values,
}

const fn visit(name: &'static str, expr: &'static str) -> Dimension {
    Dimension {
        name,
        values: Values::PerVisit(expr),
    }
}

const fn action(name: &'static str, array: &'static str, pageview: bool) -> Dimension {
    Dimension {
        name,
        values: Values::PerAction { array, pageview },
    }
}

/// Separates the parts of a value that combines two dimensions (browser and its version): a
/// control character no stored value contains, since the write path keeps only printable text.
pub const PAIR_SEPARATOR: char = '\u{1f}';

/// Page-load buckets, Matomo's ranges of page generation time. The expression maps a time in
/// milliseconds (`ms`) to its bucket's label; `-1` (not measured) is left out before.
const LOAD_BUCKET: &str = "multiIf(ms < 500, '0-0.5s', ms < 1000, '0.5-1s', ms < 2000, '1-2s', \
     ms < 5000, '2-5s', ms < 10000, '5-10s', '10s+')";

/// Every dimension with its own rows in `agg_breakdown`.
///
/// `visit:browser_version` and `visit:os_version` are stored alone and together with the
/// browser or system they belong to (`Chrome␟142`), so that a breakdown by the version alone and
/// one by browser and version are both read from rows of their own, whose visitors are exact.
pub const DIMENSIONS: &[Dimension] = &[
    action("event:page", "pv_pages", true),
    action("event:title", "pv_titles", true),
    action("event:hostname", "pv_hosts", true),
    action(
        "event:page_load",
        "arrayMap(ms -> LOAD_BUCKET, arrayFilter(ms -> ms >= 0, pv_load_ms))",
        true,
    ),
    action("event:category", "ev_categories", false),
    action("event:action", "ev_actions", false),
    action("event:name", "ev_names", false),
    action("event:outlink", "outlinks", false),
    action("event:download", "downloads", false),
    action("event:search", "searches", false),
    action("event:search_category", "search_categories", false),
    action("event:goal", "goals", false),
    visit("visit:entry_page", "entry_page"),
    visit("visit:exit_page", "exit_page"),
    visit("visit:entry_page_hostname", "entry_hostname"),
    visit("visit:exit_page_hostname", "exit_hostname"),
    visit("visit:channel", "channel"),
    visit("visit:source", "source"),
    visit("visit:referrer", "referrer_host"),
    visit("visit:referrer_keyword", "referrer_keyword"),
    visit("visit:utm_campaign", "campaign_name"),
    visit("visit:utm_source", "campaign_source"),
    visit("visit:utm_medium", "campaign_medium"),
    visit("visit:utm_term", "campaign_keyword"),
    visit("visit:utm_content", "campaign_content"),
    visit("visit:country", "country"),
    visit("visit:region", "region"),
    visit("visit:city", "city"),
    visit("visit:browser", "browser"),
    visit("visit:browser_version", "browser_version"),
    visit(
        "visit:browser+visit:browser_version",
        "concat(browser, '\\x1f', browser_version)",
    ),
    visit("visit:os", "os"),
    visit("visit:os_version", "os_version"),
    visit(
        "visit:os+visit:os_version",
        "concat(os, '\\x1f', os_version)",
    ),
    visit("visit:device", "device"),
    visit("visit:screen", "resolution"),
    visit("visit:language", "lang"),
    visit("visit:visitor_type", "visitor_type"),
];

/// Custom properties (`event:props:KEY`): one action has one value of a key (`''`, shown as
/// `(none)`, without it). Not in [`DIMENSIONS`]: its rows are written per key
/// (`event:props:KEY`, [`super::sql::props_breakdown_insert`]), and the engine reads the rows
/// of the query's key (`src/query/aggregates.rs`). Its array expression is unused.
pub const PROPS: Dimension = action("event:props", "[]", false);

/// The stored dimension called `name`.
pub fn find(name: &str) -> Option<&'static Dimension> {
    DIMENSIONS.iter().find(|d| d.name == name)
}

impl Dimension {
    /// The SQL array expression of this dimension's values in one visit: `[expr]` for a
    /// per-visit dimension, one element per action for a per-action one.
    pub fn array_sql(&self) -> String {
        match self.values {
            Values::PerVisit(expr) => format!("[{expr}]"),
            Values::PerAction { array, .. } => expand(array),
        }
    }
}

/// An array expression with the page-load bucket spelled out.
pub fn expand(array: &str) -> String {
    array.replace("LOAD_BUCKET", LOAD_BUCKET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_look_like_the_api() {
        let mut seen = std::collections::HashSet::new();
        for d in DIMENSIONS {
            assert!(seen.insert(d.name), "{} twice", d.name);
            for part in d.name.split('+') {
                assert!(
                    part.starts_with("event:") || part.starts_with("visit:"),
                    "{part}"
                );
            }
        }
        assert!(find("event:page").is_some());
        assert!(find("event:nope").is_none());
    }

    #[test]
    fn load_bucket_is_spelled_out() {
        let d = find("event:page_load").unwrap();
        let sql = d.array_sql();
        assert!(
            sql.contains("ms < 500") && !sql.contains("LOAD_BUCKET"),
            "{sql}"
        );
        assert_eq!(find("visit:country").unwrap().array_sql(), "[country]");
    }
}
