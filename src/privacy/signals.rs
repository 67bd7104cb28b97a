//! The visitor's own refusal to be counted, honoured before anything else happens to a hit.

use hyper::HeaderMap;
use hyper::header::COOKIE;

use crate::config::PrivacyConfig;

/// Why a visitor's hit is not counted at their own request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The opt-out cookie set by the opt-out page or the tracker's `optUserOut`.
    OptOutCookie,
    /// `DNT: 1`.
    DoNotTrack,
    /// `Sec-GPC: 1` (Global Privacy Control).
    GlobalPrivacyControl,
}

impl Refusal {
    /// Label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::OptOutCookie => "optout_cookie",
            Refusal::DoNotTrack => "dnt",
            Refusal::GlobalPrivacyControl => "gpc",
        }
    }
}

/// The first refusal this request carries, if any.
pub fn refusal(headers: &HeaderMap, cfg: &PrivacyConfig) -> Option<Refusal> {
    if has_cookie(headers, &cfg.optout_cookie) {
        return Some(Refusal::OptOutCookie);
    }
    if cfg.respect_dnt && header_is_one(headers, "dnt") {
        return Some(Refusal::DoNotTrack);
    }
    if cfg.respect_gpc && header_is_one(headers, "sec-gpc") {
        return Some(Refusal::GlobalPrivacyControl);
    }
    None
}

fn header_is_one(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .any(|v| v.as_bytes().trim_ascii() == b"1")
}

/// Whether a cookie named `name` is present, whatever its value: the opt-out cookie's presence
/// is the refusal, so a tampered or empty value must not turn tracking back on. The opt-out page
/// reads the visitor's current choice the same way.
pub fn has_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .any(|c| c.is_ok_and(|c| c.name() == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::header_map as h;

    #[test]
    fn nothing_refused_by_default() {
        assert_eq!(refusal(&h(&[]), &PrivacyConfig::default()), None);
        let other = h(&[
            ("cookie", "a=1; tally_ignorex=1"),
            ("dnt", "0"),
            ("sec-gpc", "0"),
        ]);
        assert_eq!(refusal(&other, &PrivacyConfig::default()), None);
    }

    #[test]
    fn optout_cookie_any_value() {
        let c = PrivacyConfig::default();
        for v in [
            "tally_ignore=1",
            "a=b; tally_ignore=",
            "x=1;tally_ignore=yes;y=2",
        ] {
            assert_eq!(
                refusal(&h(&[("cookie", v)]), &c),
                Some(Refusal::OptOutCookie),
                "{v}"
            );
        }
        // Second Cookie header line too.
        let two = h(&[("cookie", "a=1"), ("cookie", "tally_ignore=1")]);
        assert_eq!(refusal(&two, &c), Some(Refusal::OptOutCookie));
        // The configured name is used.
        let renamed = PrivacyConfig {
            optout_cookie: "no_stats".into(),
            ..c
        };
        assert_eq!(refusal(&h(&[("cookie", "tally_ignore=1")]), &renamed), None);
        assert_eq!(
            refusal(&h(&[("cookie", "no_stats=1")]), &renamed),
            Some(Refusal::OptOutCookie)
        );
    }

    #[test]
    fn dnt_and_gpc_follow_settings() {
        let mut c = PrivacyConfig::default();
        assert_eq!(refusal(&h(&[("dnt", "1")]), &c), Some(Refusal::DoNotTrack));
        assert_eq!(
            refusal(&h(&[("sec-gpc", "1")]), &c),
            Some(Refusal::GlobalPrivacyControl)
        );
        c.respect_dnt = false;
        c.respect_gpc = false;
        assert_eq!(refusal(&h(&[("dnt", "1"), ("sec-gpc", "1")]), &c), None);
        // The cookie is the visitor's explicit choice and cannot be switched off.
        assert_eq!(
            refusal(&h(&[("cookie", "tally_ignore=1")]), &c),
            Some(Refusal::OptOutCookie)
        );
    }
}
