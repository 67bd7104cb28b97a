//! Wall-clock helpers: Unix seconds in UTC, and the days of a site's time zone.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now. Saturates rather than panicking on a clock before 1970
/// or after 2106 (the range of ClickHouse's `DateTime`).
pub fn now_unix() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// Days since the Unix epoch (UTC) of a Unix time: the day number ClickHouse's `Date` holds.
pub fn day_of(unix: u32) -> u32 {
    unix / 86_400
}

/// Parses `cdt`: Unix seconds or `YYYY-MM-DD HH:MM:SS` in UTC, as Matomo accepts.
pub fn parse_cdt(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse::<u64>() {
        return u32::try_from(n).ok();
    }
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok()?;
    u32::try_from(t.and_utc().timestamp()).ok()
}

/// A calendar day of some time zone, as ClickHouse's `Date` holds it: days since 1970-01-01.
pub type DayNumber = u32;

/// The local date of `unix` in `tz`.
pub fn local_date(tz: chrono_tz::Tz, unix: u32) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp(i64::from(unix), 0)
        .unwrap_or_default()
        .with_timezone(&tz)
        .date_naive()
}

/// The day number of a date (days since 1970-01-01), saturating at the ends of `u32`.
pub fn day_number(date: chrono::NaiveDate) -> DayNumber {
    let days = date
        .signed_duration_since(chrono::NaiveDate::default())
        .num_days();
    u32::try_from(days.max(0)).unwrap_or(u32::MAX)
}

/// The date of a day number.
pub fn date_of(day: DayNumber) -> chrono::NaiveDate {
    chrono::NaiveDate::default() + chrono::Days::new(u64::from(day))
}

/// Unix seconds of the first instant of `date` in `tz`. Where local midnight does not exist (a
/// zone that moves its clocks at 00:00, such as America/Havana or Asia/Beirut), the day begins
/// at the first instant that does.
pub fn start_of_day(tz: chrono_tz::Tz, date: chrono::NaiveDate) -> u32 {
    use chrono::TimeZone;
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    let mut t = midnight;
    // A gap is at most a few hours; step forward until the local time exists.
    for _ in 0..48 {
        if let Some(at) = tz.from_local_datetime(&t).earliest() {
            return u32::try_from(at.timestamp().max(0)).unwrap_or(u32::MAX);
        }
        t += chrono::Duration::minutes(30);
    }
    u32::try_from(midnight.and_utc().timestamp().max(0)).unwrap_or(u32::MAX)
}

/// The UTC interval `[start, end)` of `date` in `tz`: 24 hours long, or 23 or 25 on the days
/// daylight saving time begins or ends.
pub fn day_bounds(tz: chrono_tz::Tz, date: chrono::NaiveDate) -> (u32, u32) {
    (
        start_of_day(tz, date),
        start_of_day(tz, date.succ_opt().unwrap_or(date)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdt_forms() {
        assert_eq!(parse_cdt("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_cdt("2023-11-14 22:13:20"), Some(1_700_000_000));
        assert_eq!(parse_cdt("yesterday"), None);
        assert_eq!(parse_cdt("-5"), None);
        assert_eq!(parse_cdt("99999999999"), None);
    }

    #[test]
    fn days() {
        assert_eq!(day_of(86_399), 0);
        assert_eq!(day_of(86_400), 1);
    }

    #[test]
    fn local_days() {
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        // 2026-11-25 23:30 UTC is already the 26th in Berlin.
        let t = 1_795_649_400;
        assert_eq!(local_date(chrono_tz::UTC, t).to_string(), "2026-11-25");
        assert_eq!(local_date(berlin, t).to_string(), "2026-11-26");
        let d = local_date(berlin, t);
        assert_eq!(date_of(day_number(d)), d);
        assert_eq!(day_bounds(berlin, d), (1_795_647_600, 1_795_734_000));
        // The spring change: 23 hours; the autumn one: 25.
        let spring = chrono::NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let (a, b) = day_bounds(berlin, spring);
        assert_eq!(b - a, 23 * 3600);
        let autumn = chrono::NaiveDate::from_ymd_opt(2026, 10, 25).unwrap();
        let (a, b) = day_bounds(berlin, autumn);
        assert_eq!(b - a, 25 * 3600);
        // Havana moves its clocks at midnight: that day begins at 01:00 local.
        let havana: chrono_tz::Tz = "America/Havana".parse().unwrap();
        let gap = chrono::NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
        let (a, b) = day_bounds(havana, gap);
        assert_eq!(b - a, 23 * 3600);
        assert_eq!(local_date(havana, a), gap);
        assert_eq!(local_date(havana, a - 1), gap.pred_opt().unwrap());
    }
}
