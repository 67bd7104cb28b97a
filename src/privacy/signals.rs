//! The visitor's own refusal to be counted, honoured before anything else happens to a hit.

use hyper::HeaderMap;
use hyper::header::COOKIE;

use crate::config::PrivacyConfig;

/// Why a visitor's hit is not counted at their own request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The opt-out cookie set by the opt-out page or the tracker's `optUserOut`, or one of the
    /// opt-out cookies of Matomo honoured as well
    /// ([`PrivacyConfig::honour_optout_cookies`]).
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
    if opted_out(headers, cfg) {
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

/// Whether the visitor opted out by cookie: tally's own ([`PrivacyConfig::optout_cookie`]) or
/// one of the others honoured ([`PrivacyConfig::honour_optout_cookies`], Matomo's
/// `matomo_ignore` and `piwik_ignore` by default). A visitor who opted out on a site's former
/// Matomo, served from the host tally now answers on, has told the operator once already.
pub fn opted_out(headers: &HeaderMap, cfg: &PrivacyConfig) -> bool {
    cookies(headers).any(|c| c.is_ok_and(|c| optout_names(cfg).any(|n| n == c.name())))
}

/// The opt-out cookies (tally's own first, then the honoured ones) this request carries. For
/// the opt-out page, which clears them all when the visitor opts back in.
pub fn present_cookies<'c>(headers: &HeaderMap, cfg: &'c PrivacyConfig) -> Vec<&'c str> {
    optout_names(cfg)
        .filter(|n| has_cookie(headers, n))
        .collect()
}

fn optout_names(cfg: &PrivacyConfig) -> impl Iterator<Item = &str> {
    std::iter::once(cfg.optout_cookie.as_str())
        .chain(cfg.honour_optout_cookies.iter().map(String::as_str))
}

fn cookies(
    headers: &HeaderMap,
) -> impl Iterator<Item = Result<cookie::Cookie<'_>, cookie::ParseError>> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
}

/// Whether a cookie named `name` is present, whatever its value: the opt-out cookie's presence
/// is the refusal, so a tampered or empty value must not turn tracking back on. The opt-out page
/// reads the visitor's current choice the same way.
pub fn has_cookie(headers: &HeaderMap, name: &str) -> bool {
    cookies(headers).any(|c| c.is_ok_and(|c| c.name() == name))
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
    fn matomo_optout_cookies_are_honoured() {
        let c = PrivacyConfig::default();
        assert_eq!(c.honour_optout_cookies, ["matomo_ignore", "piwik_ignore"]);
        for v in [
            "matomo_ignore=*",
            "piwik_ignore=1",
            "a=1; piwik_ignore=",
            "_pk_id.1.1fff=abc; matomo_ignore=ignore%3Dx",
        ] {
            let headers = h(&[("cookie", v)]);
            assert_eq!(refusal(&headers, &c), Some(Refusal::OptOutCookie), "{v}");
            assert!(opted_out(&headers, &c));
        }
        // Look-alikes are not.
        for v in [
            "matomo_ignored=1",
            "xpiwik_ignore=1",
            "mtm_consent_removed=1",
        ] {
            assert_eq!(refusal(&h(&[("cookie", v)]), &c), None, "{v}");
        }
        // The list is the operator's: emptied, only tally's own cookie counts.
        let own_only = PrivacyConfig {
            honour_optout_cookies: Vec::new(),
            ..c.clone()
        };
        assert_eq!(
            refusal(&h(&[("cookie", "matomo_ignore=*")]), &own_only),
            None
        );
        assert_eq!(
            refusal(&h(&[("cookie", "tally_ignore=1")]), &own_only),
            Some(Refusal::OptOutCookie)
        );
        let other = PrivacyConfig {
            honour_optout_cookies: vec!["old_ignore".into()],
            ..c.clone()
        };
        assert!(opted_out(&h(&[("cookie", "old_ignore=1")]), &other));
        // Which ones are present, tally's own first.
        let both = h(&[("cookie", "piwik_ignore=1; tally_ignore=1")]);
        assert_eq!(present_cookies(&both, &c), ["tally_ignore", "piwik_ignore"]);
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
