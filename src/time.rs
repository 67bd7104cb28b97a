//! Wall-clock helpers in UTC.

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
}
