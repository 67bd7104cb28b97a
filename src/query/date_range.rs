//! The days a Stats API query covers: its `date_range`, the comparison period of
//! `include.comparisons`, and the bucket size a plain `time` dimension stands for.
//!
//! Everything here is in *local dates* of the site's time zone, inclusive at both ends; the
//! engine turns them into UTC instants with [`crate::time::day_bounds`]. Relative ranges are
//! resolved against a reference day ("today", or the request's `date`) as Plausible resolves
//! them (its `QueryBuilder`): `7d` is the seven days *before* today, `6mo` the six whole months
//! before this one, `month` and `year` the whole calendar month and year today is in.

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use serde_json::Value;

use super::request::{RequestError, err, mismatch, show};

/// The earliest day a request may name: ClickHouse's `Date` and `DateTime` begin here.
pub const MIN_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("valid date"),
};

/// The latest day a request may name: the last whole year before ClickHouse's `DateTime`
/// (unsigned 32-bit seconds) ends in February 2106.
pub const MAX_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2105, 12, 31) {
    Some(d) => d,
    None => panic!("valid date"),
};

/// The most days `"Nd"` may ask for (Plausible's limit).
pub const MAX_LAST_DAYS: u16 = 5_000;

/// The most months `"Nmo"` may ask for (Plausible's limit).
pub const MAX_LAST_MONTHS: u8 = 100;

/// How far back `realtime` looks, in seconds: the last 30 minutes.
pub const REALTIME_SECONDS: u32 = 30 * 60;

/// The `date_range` of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateRange {
    /// `"day"`: the reference day (today).
    Day,
    /// `"Nd"` (`"7d"`, `"28d"`, `"30d"`, `"91d"`, ... up to [`MAX_LAST_DAYS`]): the N days
    /// before the reference day; the reference day itself is not included.
    LastDays(u16),
    /// `"month"`: the whole calendar month of the reference day, its later days included.
    Month,
    /// `"Nmo"` (`"6mo"`, `"12mo"`, ... up to [`MAX_LAST_MONTHS`]): the N whole calendar
    /// months before the reference day's month; that month itself is not included.
    LastMonths(u8),
    /// `"year"`: the whole calendar year of the reference day.
    Year,
    /// `"all"`: from the site's first day with data to the reference day.
    All,
    /// `["YYYY-MM-DD", "YYYY-MM-DD"]`: these days, both included.
    Custom(NaiveDate, NaiveDate),
    /// `"realtime"` (or `"30m"`): the last [`REALTIME_SECONDS`] up to now (tally's own; see
    /// [`realtime_window`]).
    Realtime,
}

impl DateRange {
    /// The local days covered, first and last included, with `today` as the reference day
    /// and `first_day` the site's first day with data (`None` if it has none yet).
    ///
    /// `All` begins at `first_day`, or today without data (or with data only after today).
    /// `Realtime` gives yesterday and today: the days the last 30 minutes can touch; the
    /// engine bounds the instants with [`realtime_window`].
    pub fn resolve(
        &self,
        today: NaiveDate,
        first_day: Option<NaiveDate>,
    ) -> Result<(NaiveDate, NaiveDate), RequestError> {
        let out_of_range = || RequestError {
            message: format!(
                "#/date_range: Invalid date range {}: its days are outside {MIN_DATE} to {MAX_DATE}",
                self.describe()
            ),
        };
        let month_start = today.with_day(1).ok_or_else(out_of_range)?;
        let range = match *self {
            DateRange::Day => Some((today, today)),
            DateRange::LastDays(n) => today
                .checked_sub_days(Days::new(u64::from(n)))
                .zip(today.pred_opt()),
            DateRange::Month => Some((month_start, last_of_month(today).ok_or_else(out_of_range)?)),
            DateRange::LastMonths(n) => month_start
                .checked_sub_months(Months::new(u32::from(n)))
                .zip(month_start.pred_opt()),
            DateRange::Year => NaiveDate::from_ymd_opt(today.year(), 1, 1)
                .zip(NaiveDate::from_ymd_opt(today.year(), 12, 31)),
            DateRange::All => Some((first_day.unwrap_or(today).min(today), today)),
            DateRange::Custom(first, last) => Some((first, last)),
            DateRange::Realtime => today.pred_opt().map(|yesterday| (yesterday, today)),
        };
        match range {
            Some((first, last)) if first >= MIN_DATE && last <= MAX_DATE => Ok((first, last)),
            _ => Err(out_of_range()),
        }
    }

    /// Whether this is `realtime`.
    pub fn is_realtime(&self) -> bool {
        matches!(self, DateRange::Realtime)
    }

    /// The request's form of this range, for messages: `"7d"`, `["2024-01-01", "2024-01-31"]`.
    pub fn describe(&self) -> String {
        match *self {
            DateRange::Day => "\"day\"".into(),
            DateRange::LastDays(n) => format!("\"{n}d\""),
            DateRange::Month => "\"month\"".into(),
            DateRange::LastMonths(n) => format!("\"{n}mo\""),
            DateRange::Year => "\"year\"".into(),
            DateRange::All => "\"all\"".into(),
            DateRange::Custom(a, b) => format!("[\"{a}\", \"{b}\"]"),
            DateRange::Realtime => "\"realtime\"".into(),
        }
    }
}

/// The UTC window `[from, to]` (Unix seconds) of `realtime` at `now_unix`: the last
/// [`REALTIME_SECONDS`].
pub fn realtime_window(now_unix: u32) -> (u32, u32) {
    (now_unix.saturating_sub(REALTIME_SECONDS), now_unix)
}

/// The last day of `date`'s month.
fn last_of_month(date: NaiveDate) -> Option<NaiveDate> {
    date.with_day(1)?
        .checked_add_months(Months::new(1))?
        .pred_opt()
}

/// Parses `date_range` (at `path`).
pub(super) fn parse(value: &Value, path: &str) -> Result<DateRange, RequestError> {
    let invalid = |reason: &str| {
        let reason = if reason.is_empty() {
            String::new()
        } else {
            format!(": {reason}")
        };
        err(path, format!("Invalid date range {}{reason}", show(value)))
    };
    match value {
        Value::String(s) => match s.as_str() {
            "day" => Ok(DateRange::Day),
            "month" => Ok(DateRange::Month),
            "year" => Ok(DateRange::Year),
            "all" => Ok(DateRange::All),
            "realtime" | "30m" => Ok(DateRange::Realtime),
            other => parse_shorthand(other).map_err(invalid),
        },
        Value::Array(items) => {
            let [Value::String(a), Value::String(b)] = items.as_slice() else {
                return Err(invalid(
                    "give two dates such as [\"2024-01-01\", \"2024-01-31\"]",
                ));
            };
            let (first, last) = parse_day_pair(a, b).map_err(|reason| invalid(&reason))?;
            Ok(DateRange::Custom(first, last))
        }
        _ => Err(invalid("")),
    }
}

/// `"7d"` → `LastDays(7)`, `"6mo"` → `LastMonths(6)`; the reason otherwise.
fn parse_shorthand(s: &str) -> Result<DateRange, &'static str> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = s.split_at(digits);
    // Leading zeros ("07d") and signs are not part of the shorthand.
    if number.is_empty() || number.starts_with('0') || number.len() > 5 {
        return Err("");
    }
    let n: u32 = number.parse().map_err(|_| "")?;
    match unit {
        "d" => u16::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_LAST_DAYS)
            .map(DateRange::LastDays)
            .ok_or("at most 5000 days (\"5000d\")"),
        "mo" => u8::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_LAST_MONTHS)
            .map(DateRange::LastMonths)
            .ok_or("at most 100 months (\"100mo\")"),
        _ => Err(""),
    }
}

/// Two `YYYY-MM-DD` days, the first not after the second; the reason otherwise.
pub(super) fn parse_day_pair(a: &str, b: &str) -> Result<(NaiveDate, NaiveDate), String> {
    let first = parse_day(a)?;
    let last = parse_day(b)?;
    if first > last {
        return Err(format!(
            "the first day ({first}) is after the last ({last})"
        ));
    }
    Ok((first, last))
}

/// One `YYYY-MM-DD` day between [`MIN_DATE`] and [`MAX_DATE`]; the reason otherwise.
pub(super) fn parse_day(s: &str) -> Result<NaiveDate, String> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        // A date and time: tally's days are whole days of the site's time zone, so an
        // instant range could only be answered approximately. Refused rather than rounded.
        if s.len() > 10 && s.contains('T') {
            return Err(
                "tally answers whole days in the site's time zone: give dates \
                        (YYYY-MM-DD), not times"
                    .into(),
            );
        }
        return Err(format!(
            "{} is not a date (YYYY-MM-DD)",
            show(&Value::from(s))
        ));
    }
    let number = |range: std::ops::Range<usize>| {
        s[range].parse::<u32>().expect("checked: ASCII digits only")
    };
    let date = i32::try_from(number(0..4))
        .ok()
        .and_then(|year| NaiveDate::from_ymd_opt(year, number(5..7), number(8..10)))
        .ok_or_else(|| format!("{} is not a date of the calendar", show(&Value::from(s))))?;
    if !(MIN_DATE..=MAX_DATE).contains(&date) {
        return Err(format!(
            "{date} is outside the days tally can store ({MIN_DATE} to {MAX_DATE})"
        ));
    }
    Ok(date)
}

/// The reference day of relative ranges (the request's `date`).
pub(super) fn parse_reference_date(value: &Value, path: &str) -> Result<NaiveDate, RequestError> {
    let Value::String(s) = value else {
        return Err(mismatch(path, "String", value));
    };
    parse_day(s).map_err(|reason| err(path, format!("Invalid date {}: {reason}", show(value))))
}

/// The bucket a time dimension groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeGrain {
    /// Hours (`time:hour`); labels like `2024-01-01 13:00:00`.
    Hour,
    /// Days (`time:day`); labels like `2024-01-01`.
    Day,
    /// Weeks beginning on Monday (`time:week`); labelled by their first day within the range.
    Week,
    /// Calendar months (`time:month`); labelled by their first day, `2024-01-01`.
    Month,
}

impl TimeGrain {
    /// What a plain `time` dimension stands for over `first..=last`, as Plausible decides it:
    /// hours up to 2 days, days up to 41, weeks up to 371 (53 weeks), months beyond.
    pub fn for_span(first: NaiveDate, last: NaiveDate) -> TimeGrain {
        // Plausible compares whole hours, days and weeks between 00:00:00 of the first day
        // and 23:59:59 of the last, which comes down to these day counts.
        let days = last.signed_duration_since(first).num_days() + 1;
        match days {
            ..=2 => TimeGrain::Hour,
            3..=41 => TimeGrain::Day,
            42..=371 => TimeGrain::Week,
            _ => TimeGrain::Month,
        }
    }
}

/// `include.comparisons`: which period to compare the query's with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparisons {
    /// How the comparison period is chosen.
    pub mode: CompareMode,
    /// Move the comparison period so that it begins on the same day of the week as the
    /// query's (`"match_day_of_week": true`). Off unless asked for, as in Plausible's API (its
    /// dashboard turns it on). No effect on `custom`.
    pub match_day_of_week: bool,
}

/// The modes of `include.comparisons.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareMode {
    /// `"previous_period"`: as many days, ending the day before the query's first day.
    PreviousPeriod,
    /// `"year_over_year"`: the same days one year earlier.
    YearOverYear,
    /// `"custom"` with `"date_range": ["YYYY-MM-DD", "YYYY-MM-DD"]`: these days.
    Custom(NaiveDate, NaiveDate),
}

impl CompareMode {
    /// The request's name of the mode.
    pub fn as_str(&self) -> &'static str {
        match self {
            CompareMode::PreviousPeriod => "previous_period",
            CompareMode::YearOverYear => "year_over_year",
            CompareMode::Custom(..) => "custom",
        }
    }
}

impl Comparisons {
    /// The comparison period of the resolved period `resolved`, `today` being the reference
    /// day.
    ///
    /// As in Plausible, the query's period is first cut at `today`: "this month" on the 5th
    /// compares its 5 days so far, with the 5 days before (`previous_period`) or the 1st to
    /// the 5th of the same month a year earlier (`year_over_year`). The year-earlier start of
    /// 29 February is 28 February. With `match_day_of_week`, the period then moves forward to
    /// the next day that has the weekday of the query's first day (backward by a week
    /// instead if that would be the query's first day itself).
    pub fn period(
        &self,
        resolved: (NaiveDate, NaiveDate),
        today: NaiveDate,
    ) -> (NaiveDate, NaiveDate) {
        let (first, last) = resolved;
        let last = last.min(today).max(first);
        let length = last.signed_duration_since(first).num_days();
        let period = match self.mode {
            CompareMode::Custom(a, b) => return (a, b),
            CompareMode::PreviousPeriod => {
                let shift = Days::new(length.unsigned_abs() + 1);
                (
                    first.checked_sub_days(shift).unwrap_or(MIN_DATE),
                    last.checked_sub_days(shift).unwrap_or(MIN_DATE),
                )
            }
            CompareMode::YearOverYear => {
                // chrono ends a month shift on the last day of a shorter month: 29 Feb → 28 Feb.
                let start = first
                    .checked_sub_months(Months::new(12))
                    .unwrap_or(MIN_DATE);
                let end = start
                    .checked_add_days(Days::new(length.unsigned_abs()))
                    .unwrap_or(start);
                (start, end)
            }
        };
        if self.match_day_of_week {
            match_weekday(period, first.weekday(), first)
        } else {
            period
        }
    }
}

/// Moves `period` to begin on `weekday`: to the next such day, or a week before that if the
/// next is `avoid` (the query's own first day, which a comparison must not begin on).
fn match_weekday(
    period: (NaiveDate, NaiveDate),
    weekday: Weekday,
    avoid: NaiveDate,
) -> (NaiveDate, NaiveDate) {
    let (start, end) = period;
    let ahead = (7 + weekday.num_days_from_monday() - start.weekday().num_days_from_monday()) % 7;
    if ahead == 0 {
        return period;
    }
    let shift = |d: NaiveDate, days: i64| {
        if days >= 0 {
            d.checked_add_days(Days::new(days.unsigned_abs()))
        } else {
            d.checked_sub_days(Days::new(days.unsigned_abs()))
        }
        .unwrap_or(d)
    };
    let mut days = i64::from(ahead);
    if shift(start, days) == avoid {
        days -= 7;
    }
    (shift(start, days), shift(end, days))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn resolve(range: DateRange, today: &str) -> (String, String) {
        let (a, b) = range.resolve(d(today), None).unwrap();
        (a.to_string(), b.to_string())
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn relative_ranges_resolve_as_plausible_does() {
        // Plausible's own expectations (query_parse_and_build_test.exs), today = 2021-05-05.
        let today = "2021-05-05";
        let cases = [
            (DateRange::Day, ("2021-05-05", "2021-05-05")),
            (DateRange::LastDays(7), ("2021-04-28", "2021-05-04")),
            (DateRange::LastDays(10), ("2021-04-25", "2021-05-04")),
            (DateRange::LastDays(28), ("2021-04-07", "2021-05-04")),
            (DateRange::LastDays(30), ("2021-04-05", "2021-05-04")),
            (DateRange::LastDays(91), ("2021-02-03", "2021-05-04")),
            (DateRange::Month, ("2021-05-01", "2021-05-31")),
            (DateRange::LastMonths(3), ("2021-02-01", "2021-04-30")),
            (DateRange::LastMonths(6), ("2020-11-01", "2021-04-30")),
            (DateRange::LastMonths(12), ("2020-05-01", "2021-04-30")),
            (DateRange::Year, ("2021-01-01", "2021-12-31")),
            (DateRange::All, ("2021-05-05", "2021-05-05")),
            (
                DateRange::Custom(d("2020-02-03"), d("2020-03-04")),
                ("2020-02-03", "2020-03-04"),
            ),
            (DateRange::Realtime, ("2021-05-04", "2021-05-05")),
        ];
        for (range, (first, last)) in cases {
            assert_eq!(resolve(range, today), pair(first, last), "{range:?}");
        }
    }

    #[test]
    fn month_ends_and_leap_years() {
        let cases = [
            // The month of a 31st, of 29 February, and the months before a 31st.
            (DateRange::Month, "2024-01-31", ("2024-01-01", "2024-01-31")),
            (DateRange::Month, "2024-02-29", ("2024-02-01", "2024-02-29")),
            (DateRange::Month, "2023-02-15", ("2023-02-01", "2023-02-28")),
            (DateRange::Month, "2024-12-01", ("2024-12-01", "2024-12-31")),
            (
                DateRange::LastMonths(1),
                "2024-03-31",
                ("2024-02-01", "2024-02-29"),
            ),
            (
                DateRange::LastMonths(1),
                "2023-03-31",
                ("2023-02-01", "2023-02-28"),
            ),
            (
                DateRange::LastMonths(6),
                "2024-08-31",
                ("2024-02-01", "2024-07-31"),
            ),
            (
                DateRange::LastMonths(12),
                "2024-01-01",
                ("2023-01-01", "2023-12-31"),
            ),
            (
                DateRange::LastMonths(100),
                "2024-05-20",
                ("2016-01-01", "2024-04-30"),
            ),
            // Days across 29 February and a year's end.
            (
                DateRange::LastDays(7),
                "2024-03-03",
                ("2024-02-25", "2024-03-02"),
            ),
            (
                DateRange::LastDays(7),
                "2023-03-03",
                ("2023-02-24", "2023-03-02"),
            ),
            (
                DateRange::LastDays(1),
                "2024-01-01",
                ("2023-12-31", "2023-12-31"),
            ),
            (
                DateRange::LastDays(366),
                "2025-01-01",
                ("2024-01-01", "2024-12-31"),
            ),
            (DateRange::Year, "2024-02-29", ("2024-01-01", "2024-12-31")),
            (DateRange::Day, "2024-02-29", ("2024-02-29", "2024-02-29")),
            (
                DateRange::Realtime,
                "2024-03-01",
                ("2024-02-29", "2024-03-01"),
            ),
        ];
        for (range, today, (first, last)) in cases {
            assert_eq!(
                resolve(range, today),
                pair(first, last),
                "{range:?} on {today}"
            );
        }
    }

    #[test]
    fn all_begins_at_the_first_day_with_data() {
        let today = d("2024-05-05");
        let cases = [
            (Some("2020-01-01"), ("2020-01-01", "2024-05-05")),
            (Some("2024-05-05"), ("2024-05-05", "2024-05-05")),
            // Data only after the reference day (a request's `date` in the past): nothing
            // before it, so the range is that one day rather than an inverted one.
            (Some("2024-06-01"), ("2024-05-05", "2024-05-05")),
            (None, ("2024-05-05", "2024-05-05")),
        ];
        for (first_day, (first, last)) in cases {
            let (a, b) = DateRange::All.resolve(today, first_day.map(d)).unwrap();
            assert_eq!((a.to_string(), b.to_string()), pair(first, last));
        }
    }

    #[test]
    fn resolving_beyond_the_storable_days_is_an_error() {
        let err = DateRange::LastDays(7).resolve(MIN_DATE, None).unwrap_err();
        assert_eq!(
            err.message,
            "#/date_range: Invalid date range \"7d\": its days are outside 1970-01-01 to 2105-12-31"
        );
        assert!(DateRange::Year.resolve(d("2106-01-01"), None).is_err());
        assert!(DateRange::Day.resolve(MAX_DATE, None).is_ok());
    }

    #[test]
    fn parses_every_form() {
        let ok = [
            (serde_json::json!("day"), DateRange::Day),
            (serde_json::json!("7d"), DateRange::LastDays(7)),
            (serde_json::json!("28d"), DateRange::LastDays(28)),
            (serde_json::json!("5000d"), DateRange::LastDays(5000)),
            (serde_json::json!("month"), DateRange::Month),
            (serde_json::json!("6mo"), DateRange::LastMonths(6)),
            (serde_json::json!("100mo"), DateRange::LastMonths(100)),
            (serde_json::json!("year"), DateRange::Year),
            (serde_json::json!("all"), DateRange::All),
            (serde_json::json!("realtime"), DateRange::Realtime),
            (serde_json::json!("30m"), DateRange::Realtime),
            (
                serde_json::json!(["2024-02-29", "2024-02-29"]),
                DateRange::Custom(d("2024-02-29"), d("2024-02-29")),
            ),
        ];
        for (value, range) in ok {
            assert_eq!(parse(&value, "#/date_range").unwrap(), range, "{value}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_range() {
        let cases = [
            (
                serde_json::json!("foo"),
                "#/date_range: Invalid date range \"foo\"",
            ),
            (
                serde_json::json!("-1d"),
                "#/date_range: Invalid date range \"-1d\"",
            ),
            (
                serde_json::json!("0d"),
                "#/date_range: Invalid date range \"0d\"",
            ),
            (
                serde_json::json!("07d"),
                "#/date_range: Invalid date range \"07d\"",
            ),
            (
                serde_json::json!("7 d"),
                "#/date_range: Invalid date range \"7 d\"",
            ),
            (
                serde_json::json!("7w"),
                "#/date_range: Invalid date range \"7w\"",
            ),
            (
                serde_json::json!("24h"),
                "#/date_range: Invalid date range \"24h\"",
            ),
            (
                serde_json::json!("5001d"),
                "#/date_range: Invalid date range \"5001d\": at most 5000 days (\"5000d\")",
            ),
            (
                serde_json::json!("999999999mo"),
                "#/date_range: Invalid date range \"999999999mo\"",
            ),
            (
                serde_json::json!("101mo"),
                "#/date_range: Invalid date range \"101mo\": at most 100 months (\"100mo\")",
            ),
            (serde_json::json!(7), "#/date_range: Invalid date range 7"),
            (
                serde_json::json!(null),
                "#/date_range: Invalid date range null",
            ),
            (
                serde_json::json!(["2024-01-01"]),
                "#/date_range: Invalid date range [\"2024-01-01\"]: give two dates such as [\"2024-01-01\", \"2024-01-31\"]",
            ),
            (
                serde_json::json!(["2024-01-01", 5]),
                "#/date_range: Invalid date range [\"2024-01-01\", 5]: give two dates such as [\"2024-01-01\", \"2024-01-31\"]",
            ),
            (
                serde_json::json!(["21415-00", "eee"]),
                "#/date_range: Invalid date range [\"21415-00\", \"eee\"]: \"21415-00\" is not a date (YYYY-MM-DD)",
            ),
            (
                serde_json::json!(["2024-1-01", "2024-01-31"]),
                "#/date_range: Invalid date range [\"2024-1-01\", \"2024-01-31\"]: \"2024-1-01\" is not a date (YYYY-MM-DD)",
            ),
            (
                serde_json::json!(["2023-02-29", "2023-03-01"]),
                "#/date_range: Invalid date range [\"2023-02-29\", \"2023-03-01\"]: \"2023-02-29\" is not a date of the calendar",
            ),
            (
                serde_json::json!(["2024-02-01", "2024-01-31"]),
                "#/date_range: Invalid date range [\"2024-02-01\", \"2024-01-31\"]: the first day (2024-02-01) is after the last (2024-01-31)",
            ),
            (
                serde_json::json!(["1969-12-31", "2024-01-31"]),
                "#/date_range: Invalid date range [\"1969-12-31\", \"2024-01-31\"]: 1969-12-31 is outside the days tally can store (1970-01-01 to 2105-12-31)",
            ),
            (
                serde_json::json!(["2024-01-01T00:00:00+02:00", "2024-01-31T23:59:59+02:00"]),
                "#/date_range: Invalid date range [\"2024-01-01T00:00:00+02:00\", \"2024-01-31T23:59:59+02:00\"]: tally answers whole days in the site's time zone: give dates (YYYY-MM-DD), not times",
            ),
        ];
        for (value, message) in cases {
            assert_eq!(parse(&value, "#/date_range").unwrap_err().message, message);
        }
    }

    #[test]
    fn reference_date() {
        assert_eq!(
            parse_reference_date(&serde_json::json!("2021-05-05"), "#/date").unwrap(),
            d("2021-05-05")
        );
        let cases = [
            (
                serde_json::json!(20210505),
                "#/date: Type mismatch. Expected String but got Integer.",
            ),
            (
                serde_json::json!("2021-13-01"),
                "#/date: Invalid date \"2021-13-01\": \"2021-13-01\" is not a date of the calendar",
            ),
            (
                serde_json::json!("yesterday"),
                "#/date: Invalid date \"yesterday\": \"yesterday\" is not a date (YYYY-MM-DD)",
            ),
        ];
        for (value, message) in cases {
            assert_eq!(
                parse_reference_date(&value, "#/date").unwrap_err().message,
                message
            );
        }
    }

    #[test]
    fn time_grain_follows_the_span() {
        let cases = [
            ("2024-01-01", "2024-01-01", TimeGrain::Hour),
            ("2024-01-01", "2024-01-02", TimeGrain::Hour),
            ("2024-01-01", "2024-01-03", TimeGrain::Day),
            ("2024-01-01", "2024-02-10", TimeGrain::Day), // 41 days
            ("2024-01-01", "2024-02-11", TimeGrain::Week), // 42 days
            ("2024-01-01", "2025-01-05", TimeGrain::Week), // 371 days
            ("2024-01-01", "2025-01-06", TimeGrain::Month), // 372 days
        ];
        for (first, last, grain) in cases {
            assert_eq!(
                TimeGrain::for_span(d(first), d(last)),
                grain,
                "{first}..{last}"
            );
        }
    }

    fn compare(mode: CompareMode, dow: bool, range: (&str, &str), today: &str) -> (String, String) {
        let c = Comparisons {
            mode,
            match_day_of_week: dow,
        };
        let (a, b) = c.period((d(range.0), d(range.1)), d(today));
        (a.to_string(), b.to_string())
    }

    #[test]
    fn previous_period() {
        let p = CompareMode::PreviousPeriod;
        let cases = [
            // 28d on 2021-06-10 (Plausible's own example): the 28 days before.
            (
                ("2021-05-13", "2021-06-09"),
                "2021-06-10",
                ("2021-04-15", "2021-05-12"),
            ),
            (
                ("2024-03-01", "2024-03-01"),
                "2024-03-10",
                ("2024-02-29", "2024-02-29"),
            ),
            // This month on the 5th: its 5 days so far, against the 5 days before.
            (
                ("2021-05-01", "2021-05-31"),
                "2021-05-05",
                ("2021-04-26", "2021-04-30"),
            ),
            // A whole past month of 31 days: the 31 days before, not "the previous month".
            (
                ("2024-03-01", "2024-03-31"),
                "2024-06-01",
                ("2024-01-30", "2024-02-29"),
            ),
            // A range entirely after today keeps its first day.
            (
                ("2030-01-10", "2030-01-20"),
                "2024-01-01",
                ("2030-01-09", "2030-01-09"),
            ),
        ];
        for (range, today, (first, last)) in cases {
            assert_eq!(
                compare(p, false, range, today),
                pair(first, last),
                "{range:?}"
            );
        }
    }

    #[test]
    fn year_over_year() {
        let y = CompareMode::YearOverYear;
        let cases = [
            (
                ("2024-03-01", "2024-03-31"),
                "2024-06-01",
                ("2023-03-01", "2023-03-31"),
            ),
            // From 29 February: from the 28th, as many days.
            (
                ("2024-02-29", "2024-03-06"),
                "2024-06-01",
                ("2023-02-28", "2023-03-06"),
            ),
            // Across 29 February: the same number of days, so one day later at the end.
            (
                ("2024-02-01", "2024-03-31"),
                "2024-06-01",
                ("2023-02-01", "2023-04-01"),
            ),
            // Cut at today.
            (
                ("2021-05-01", "2021-05-31"),
                "2021-05-05",
                ("2020-05-01", "2020-05-05"),
            ),
        ];
        for (range, today, (first, last)) in cases {
            assert_eq!(
                compare(y, false, range, today),
                pair(first, last),
                "{range:?}"
            );
        }
    }

    #[test]
    fn match_day_of_week() {
        let cases = [
            // Plausible's example: from Sunday 2023-01-01, a year earlier is Saturday
            // 2022-01-01, moved to Sunday 2022-01-02.
            (
                CompareMode::YearOverYear,
                ("2023-01-01", "2023-01-07"),
                ("2022-01-02", "2022-01-08"),
            ),
            // 7 days before 7 days: already the same weekday.
            (
                CompareMode::PreviousPeriod,
                ("2024-01-08", "2024-01-14"),
                ("2024-01-01", "2024-01-07"),
            ),
            // 5 days (Mon-Fri) before: the next Monday would be the query's own first day,
            // so the Monday a week before.
            (
                CompareMode::PreviousPeriod,
                ("2024-01-08", "2024-01-12"),
                ("2024-01-01", "2024-01-05"),
            ),
            // 3 days Wed-Fri: previous period Sun-Tue, moved to Wednesday.
            (
                CompareMode::PreviousPeriod,
                ("2024-01-10", "2024-01-12"),
                ("2024-01-03", "2024-01-05"),
            ),
            // Custom ranges are taken as given.
            (
                CompareMode::Custom(d("2023-05-02"), d("2023-05-09")),
                ("2024-01-10", "2024-01-12"),
                ("2023-05-02", "2023-05-09"),
            ),
        ];
        for (mode, range, (first, last)) in cases {
            assert_eq!(
                compare(mode, true, range, "2024-12-31"),
                pair(first, last),
                "{mode:?} {range:?}"
            );
        }
        // Without it, the plain period.
        assert_eq!(
            compare(
                CompareMode::YearOverYear,
                false,
                ("2023-01-01", "2023-01-07"),
                "2024-01-01"
            ),
            pair("2022-01-01", "2022-01-07")
        );
    }

    #[test]
    fn realtime_window_is_the_last_half_hour() {
        assert_eq!(realtime_window(1_000_000), (998_200, 1_000_000));
        assert_eq!(realtime_window(60), (0, 60));
    }
}
