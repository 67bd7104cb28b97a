//! How stored values are shown: time bucket labels, empty values, country names.

use chrono::{Datelike, NaiveDate};

use super::date_range::TimeGrain;
use super::request::Dimension;
use super::sums::Group;
use crate::rollup::dimensions::PAIR_SEPARATOR;

/// What an empty value is shown as: Plausible's "Direct / None" for sources, "(none)" for the
/// rest (no referrer, no campaign, a location the geo database does not know, ...).
fn empty_label(d: Dimension) -> &'static str {
    match d {
        Dimension::Source => "Direct / None",
        _ => "(none)",
    }
}

/// The stored dimension a requested one reads: the `_name` forms read their codes.
pub fn stored_name(d: Dimension) -> &'static str {
    match d {
        Dimension::CountryName => Dimension::Country.as_str(),
        Dimension::RegionName => Dimension::Region.as_str(),
        Dimension::CityName => Dimension::City.as_str(),
        other => other.as_str(),
    }
}

/// The values of a group for the requested dimensions, in their order: the time label for the
/// time dimension, the parts of the stored value for the others.
pub fn dimension_values(dims: &[Dimension], g: &Group) -> Vec<String> {
    let mut parts = g.value.split(PAIR_SEPARATOR);
    dims.iter()
        .map(|d| {
            if d.time_grain().is_some() {
                return g.t.clone();
            }
            let v = parts.next().unwrap_or("");
            if v.is_empty() {
                return empty_label(*d).to_string();
            }
            match d {
                Dimension::CountryName => isocountry::CountryCode::for_alpha2_caseless(v)
                    .map(|c| c.name().to_string())
                    .unwrap_or_else(|_| v.to_string()),
                _ => v.to_string(),
            }
        })
        .collect()
}

/// Every bucket label of `grain` over the days `first..=last`, empty ones included
/// (`meta.time_labels`), labelled as the results are.
pub fn time_labels(grain: TimeGrain, (first, last): (NaiveDate, NaiveDate)) -> Vec<String> {
    let mut out = Vec::new();
    let mut day = first;
    // At most a few thousand labels: ranges are bounded by the request parser.
    while day <= last && out.len() < 100_000 {
        match grain {
            TimeGrain::Hour => {
                out.extend((0..24).map(|h| format!("{day} {h:02}:00:00")));
            }
            TimeGrain::Day => out.push(day.to_string()),
            TimeGrain::Week => {
                let monday =
                    day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday()));
                let label = monday.max(first).to_string();
                if out.last() != Some(&label) {
                    out.push(label);
                }
            }
            TimeGrain::Month => {
                let start = day.with_day(1).unwrap_or(day).max(first).to_string();
                if out.last() != Some(&start) {
                    out.push(start);
                }
            }
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn labels_of_each_grain() {
        assert_eq!(
            time_labels(TimeGrain::Day, (d("2026-02-27"), d("2026-03-01"))),
            ["2026-02-27", "2026-02-28", "2026-03-01"]
        );
        let hours = time_labels(TimeGrain::Hour, (d("2026-11-26"), d("2026-11-26")));
        assert_eq!(hours.len(), 24);
        assert_eq!(hours[13], "2026-11-26 13:00:00");
        // 2026-11-26 is a Thursday: its week is labelled by the range's first day.
        assert_eq!(
            time_labels(TimeGrain::Week, (d("2026-11-26"), d("2026-12-08"))),
            ["2026-11-26", "2026-11-30", "2026-12-07"]
        );
        assert_eq!(
            time_labels(TimeGrain::Month, (d("2026-11-26"), d("2027-01-02"))),
            ["2026-11-26", "2026-12-01", "2027-01-01"]
        );
    }

    #[test]
    fn values_and_empty_ones() {
        let g = Group {
            t: "2026-11-26".into(),
            value: format!("Chrome{PAIR_SEPARATOR}142"),
            ..Group::default()
        };
        assert_eq!(
            dimension_values(
                &[
                    Dimension::TimeDay,
                    Dimension::Browser,
                    Dimension::BrowserVersion
                ],
                &g
            ),
            ["2026-11-26", "Chrome", "142"]
        );
        let empty = Group::default();
        assert_eq!(
            dimension_values(&[Dimension::Source], &empty),
            ["Direct / None"]
        );
        assert_eq!(dimension_values(&[Dimension::Country], &empty), ["(none)"]);
        let de = Group {
            value: "DE".into(),
            ..Group::default()
        };
        assert_eq!(
            dimension_values(&[Dimension::CountryName], &de),
            ["Germany"]
        );
    }
}
