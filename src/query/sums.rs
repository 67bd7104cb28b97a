//! The six counts every report is made of, and the metrics derived from them.

use clickhouse::Row;
use serde::Deserialize;

/// One result group as ClickHouse returns it: its time label and dimension value (empty when
/// not grouped by them), the six sums, and how many stored rows of one day were merged into it
/// at most (1 = every number is exactly a stored one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Row, Deserialize)]
pub struct Group {
    /// Time bucket label (`2026-11-26`, `2026-11-26 13:00:00`), or empty.
    pub t: String,
    /// Dimension value (two parts joined by [`crate::rollup::dimensions::PAIR_SEPARATOR`] for a
    /// browser or system with its version), or empty.
    pub value: String,
    /// Sum of daily distinct visitors.
    pub visitors: u64,
    /// Visits.
    pub visits: u64,
    /// Page views.
    pub pageviews: u64,
    /// Events (actions: page views and interactions; for event dimensions, those events).
    pub events: u64,
    /// Visits of one page view and no interaction.
    pub bounces: u64,
    /// Sum of visit durations, seconds.
    pub duration: u64,
    /// Most stored rows of one day merged into this group.
    pub n: u64,
}

/// A metric's value for a group, `total_visitors` being the visitors of the whole (filtered)
/// period for `percentage` and of the period without goal filters for `conversion_rate`.
/// Rounded as Plausible rounds them: rates and durations to whole numbers, views per visit to
/// two decimals, percentages to one... `None` where undefined (a rate of no visits).
pub fn metric(name: &str, g: &Group, total_visitors: Option<u64>) -> serde_json::Value {
    let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    let value = match name {
        "visitors" => return g.visitors.into(),
        "visits" => return g.visits.into(),
        "pageviews" => return g.pageviews.into(),
        "events" => return g.events.into(),
        "views_per_visit" => ratio(g.pageviews, g.visits).map(|r| round(r, 2)),
        "bounce_rate" => ratio(g.bounces * 100, g.visits).map(|r| r.round()),
        "visit_duration" => ratio(g.duration, g.visits).map(|r| r.round()),
        "percentage" => total_visitors
            .and_then(|t| ratio(g.visitors * 100, t))
            .map(|r| round(r, 1)),
        "conversion_rate" => total_visitors
            .and_then(|t| ratio(g.visitors * 100, t))
            .map(|r| round(r, 2)),
        _ => None,
    };
    match value {
        // Whole numbers print without a fraction, as Plausible's integers do.
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => (v as i64).into(),
        Some(v) => v.into(),
        None => serde_json::Value::Null,
    }
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// The SQL expression a metric orders by, over a grouped query with the six sums as columns.
/// `percentage` and `conversion_rate` order as `visitors` does (their denominator is the same
/// for every row).
pub fn order_expr(metric: &str) -> Option<&'static str> {
    Some(match metric {
        "visitors" | "percentage" | "conversion_rate" => "visitors",
        "visits" => "visits",
        "pageviews" => "pageviews",
        "events" => "events",
        "views_per_visit" => "if(visits = 0, 0, pageviews / visits)",
        "bounce_rate" => "if(visits = 0, 0, bounces / visits)",
        "visit_duration" => "if(visits = 0, 0, duration / visits)",
        _ => return None,
    })
}

/// The change from `before` to `now` as Plausible reports it: percent for counts (`null` from
/// nothing to something), percentage points for rates.
pub fn change(
    metric: &str,
    now: &serde_json::Value,
    before: &serde_json::Value,
) -> serde_json::Value {
    let (Some(a), Some(b)) = (now.as_f64(), before.as_f64()) else {
        return serde_json::Value::Null;
    };
    let v = match metric {
        "bounce_rate" | "percentage" | "conversion_rate" => round(a - b, 1),
        _ if b == 0.0 => {
            return if a == 0.0 {
                0.into()
            } else {
                serde_json::Value::Null
            };
        }
        _ => ((a - b) / b * 100.0).round(),
    };
    if v.fract() == 0.0 {
        (v as i64).into()
    } else {
        v.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn g() -> Group {
        Group {
            visitors: 3,
            visits: 4,
            pageviews: 7,
            events: 9,
            bounces: 1,
            duration: 362,
            ..Group::default()
        }
    }

    #[test]
    fn derived_metrics() {
        assert_eq!(metric("visitors", &g(), None), json!(3));
        assert_eq!(metric("views_per_visit", &g(), None), json!(1.75));
        assert_eq!(metric("bounce_rate", &g(), None), json!(25));
        assert_eq!(metric("visit_duration", &g(), None), json!(91));
        assert_eq!(metric("percentage", &g(), Some(9)), json!(33.3));
        assert_eq!(metric("conversion_rate", &g(), Some(8)), json!(37.5));
        assert_eq!(metric("bounce_rate", &Group::default(), None), json!(null));
        assert_eq!(metric("percentage", &g(), None), json!(null));
    }

    #[test]
    fn changes() {
        assert_eq!(change("visitors", &json!(15), &json!(10)), json!(50));
        assert_eq!(change("visitors", &json!(5), &json!(0)), json!(null));
        assert_eq!(change("visitors", &json!(0), &json!(0)), json!(0));
        assert_eq!(change("bounce_rate", &json!(40), &json!(45)), json!(-5));
        assert_eq!(change("visitors", &json!(1), &json!(null)), json!(null));
    }
}
