//! What personal data looks like, as regular expressions that mean the same to ClickHouse's
//! `match` (RE2, as old as 18.16: no `(?i)`, so case is spelled out in classes) and to the
//! `regex` crate (which redacts the examples the audit prints), and what a stored address
//! keeps.
//!
//! Every pattern of [`Kind`] has exactly three capturing groups, the rest being `(?:..)`:
//! what comes before the match (a boundary), the match itself, and what comes after. Only the
//! middle group is redacted, so an example keeps its surroundings (`?q=[e-mail]&page=2`).

use std::net::IpAddr;

use crate::privacy::TruncatedIp;

/// A kind of personal data no stored text may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An e-mail address, plain (`jane@example.com`) or percent-encoded (`jane%40example.com`).
    Email,
    /// A full IPv4 address: four decimal octets, the last one not 0 (`203.0.0.0` is already a
    /// truncated one), standing alone (not inside `1.2.3.4.5` or a longer number).
    Ipv4,
    /// A full IPv6 address: eight groups, or at least three around a `::` with groups after it
    /// (a truncated address ends in `::`).
    Ipv6,
    /// A click identifier as a query parameter (`gclid=`, `fbclid=`, ...: the list
    /// `enrich::url_hygiene` removes on arrival), plain or percent-encoded.
    ClickId,
}

impl Kind {
    /// Every kind, in the order the audit reports them.
    pub const ALL: [Kind; 4] = [Kind::Email, Kind::Ipv4, Kind::Ipv6, Kind::ClickId];

    /// The check's name in the report and the JSON.
    pub fn check_name(self) -> &'static str {
        match self {
            Kind::Email => "no_email",
            Kind::Ipv4 => "no_ipv4",
            Kind::Ipv6 => "no_ipv6",
            Kind::ClickId => "no_click_id",
        }
    }

    /// What is looked for, in words.
    pub fn what(self) -> &'static str {
        match self {
            Kind::Email => "e-mail address",
            Kind::Ipv4 => "full IPv4 address",
            Kind::Ipv6 => "full IPv6 address",
            Kind::ClickId => "click identifier",
        }
    }

    /// [`Kind::what`] with its article.
    pub fn a_what(self) -> &'static str {
        match self {
            Kind::Email => "an e-mail address",
            Kind::Ipv4 => "a full IPv4 address",
            Kind::Ipv6 => "a full IPv6 address",
            Kind::ClickId => "a click identifier",
        }
    }

    /// What a match becomes in a redacted example.
    fn placeholder(self) -> &'static str {
        match self {
            Kind::Email => "[e-mail]",
            Kind::Ipv4 => "[IPv4]",
            Kind::Ipv6 => "[IPv6]",
            Kind::ClickId => "[click id]",
        }
    }

    /// The pattern (RE2 and `regex` alike).
    pub fn pattern(self) -> String {
        const OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
        const LAST_OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]?)";
        const H: &str = "[0-9A-Fa-f]{1,4}";
        match self {
            // The local part as `mask_emails` reads it (letters, digits, `._+-` and their
            // `%XX` escapes), an `@` or `%40`, a domain with an alphabetic top level.
            Kind::Email => "()((?:[A-Za-z0-9._+-]|%[0-9A-Fa-f]{2})+(?:@|%40)\
                 [A-Za-z0-9][A-Za-z0-9-]*(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,})()"
                .to_string(),
            Kind::Ipv4 => {
                format!("(^|[^0-9.])((?:{OCTET}\\.){{3}}{LAST_OCTET})($|[^0-9.])")
            }
            Kind::Ipv6 => format!(
                "(^|[^0-9A-Za-z:.])((?:{H}:){{7}}{H}|(?:{H}:){{2,6}}(?::{H}){{1,5}}|\
                 (?:{H}:){{1,5}}(?::{H}){{2,6}})($|[^0-9A-Za-z:])"
            ),
            Kind::ClickId => {
                let names: Vec<String> = crate::enrich::url_hygiene::CLICK_IDS
                    .iter()
                    .map(|n| any_case(n))
                    .collect();
                format!(
                    "(^|[?&;#]|%3[Ff]|%26)((?:{})(?:=|%3[Dd])[^&#;]*)()",
                    names.join("|")
                )
            }
        }
    }

    /// `text` with every match replaced by the placeholder.
    fn replace(self, text: &str) -> String {
        match regex::Regex::new(&self.pattern()) {
            Ok(re) => re
                .replace_all(text, |c: &regex::Captures<'_>| {
                    format!("{}{}{}", &c[1], self.placeholder(), &c[3])
                })
                .into_owned(),
            // Cannot happen (a unit test compiles every pattern); never show the text then.
            Err(_) => self.placeholder().to_string(),
        }
    }
}

/// `text` with everything of every [`Kind`] replaced by what it is, cut to 160 characters:
/// what the report may show of a violation without repeating the personal data it found (nor
/// any other it holds).
pub fn redact(text: &str) -> String {
    let redacted = Kind::ALL
        .iter()
        .fold(text.to_string(), |t, kind| kind.replace(&t));
    shorten(&redacted, 160)
}

/// `name` matching ASCII letters in either case, without `(?i)` (RE2 of ClickHouse 18.16
/// lacks it): `gclid` becomes `[Gg][Cc][Ll][Ii][Dd]`.
fn any_case(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            } else if c.is_ascii_alphanumeric() || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// At most `max` characters of `s`, with `…` if cut.
pub fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The texts of addresses that are certainly truncated to `ip_bytes` (1, 2 or 3), as tally
/// writes them (`TruncatedIp`'s display): IPv4 ending in `ip_bytes` zero octets, IPv6 ending
/// in `::` after at most the groups kept (`/64`, `/48`, `/24`). ClickHouse skips these; every
/// other stored value is judged exactly by [`keeps_too_much`], so this only has to be sound
/// (nothing matching it keeps more), not complete.
pub fn truncated_pattern(ip_bytes: u8) -> String {
    let bytes = ip_bytes.clamp(1, 3);
    let kept = 4 - usize::from(bytes);
    let v4 = format!(
        "[0-9]{{1,3}}(?:\\.[0-9]{{1,3}}){{{}}}(?:\\.0){{{bytes}}}",
        kept - 1
    );
    let v6 = match bytes {
        1 => "(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,3})?::".to_string(),
        2 => "(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,2})?::".to_string(),
        // /24: the first group and the high byte of the second.
        _ => "(?:[0-9a-f]{1,4}(?::[0-9a-f]{0,2}00)?)?::".to_string(),
    };
    format!("^(?:{v4}|{v6})$")
}

/// Why a stored address violates `privacy.ip_bytes`, or `None` if it keeps no more than the
/// allowed leading bytes: decided by tally's own truncation (`TruncatedIp`), which must leave
/// the address as it is. An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
pub fn keeps_too_much(stored: &str, ip_bytes: u8) -> Option<&'static str> {
    let Ok(ip) = stored.trim().parse::<IpAddr>() else {
        return Some("not an address");
    };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    (TruncatedIp::new(ip, ip_bytes).addr() != ip).then_some("more than the allowed leading bytes")
}

/// `stored` with every byte beyond the `ip_bytes` kept ones shown as `x` (`203.0.x.x`,
/// `2001:db8:85a3:x:x:x:x:x`): which address it is stays hidden, which bytes are set is
/// clear enough. Not an address: its length only.
pub fn redact_address(stored: &str, ip_bytes: u8) -> String {
    let bytes = ip_bytes.clamp(1, 3);
    match stored.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            let kept = 4 - usize::from(bytes);
            let mut parts: Vec<String> = o[..kept].iter().map(u8::to_string).collect();
            parts.extend(std::iter::repeat_n("x".to_string(), usize::from(bytes)));
            parts.join(".")
        }
        Ok(IpAddr::V6(v6)) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return format!("::ffff:{}", redact_address(&v4.to_string(), bytes));
            }
            // Whole groups kept: /64 four, /48 three, /24 one and a half (shown as one).
            let kept = match bytes {
                1 => 4,
                2 => 3,
                _ => 1,
            };
            let s = v6.segments();
            let mut parts: Vec<String> = s[..kept].iter().map(|g| format!("{g:x}")).collect();
            parts.extend(std::iter::repeat_n("x".to_string(), 8 - kept));
            parts.join(":")
        }
        Err(_) => format!("({} characters, not an address)", stored.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(kind: Kind, text: &str) -> bool {
        regex::Regex::new(&kind.pattern()).unwrap().is_match(text)
    }

    #[test]
    fn every_pattern_compiles_with_three_groups() {
        for kind in Kind::ALL {
            let re = regex::Regex::new(&kind.pattern()).unwrap();
            assert_eq!(re.captures_len(), 4, "{kind:?}");
        }
        for bytes in 1..=3 {
            regex::Regex::new(&truncated_pattern(bytes)).unwrap();
        }
    }

    #[test]
    fn e_mail_addresses() {
        for yes in [
            "jane@example.com",
            "https://example.org/?u=jane.doe%40example.co.uk&x=1",
            "contact JANE+tag@Example.ORG now",
            "jane%2Btag%40example.com",
        ] {
            assert!(found(Kind::Email, yes), "{yes}");
        }
        for no in [
            "https://example.org/?u=[email]",
            "@handle",
            "a@b",
            "user@localhost",
            "https://example.org/a@1",
        ] {
            assert!(!found(Kind::Email, no), "{no}");
        }
        assert_eq!(
            redact("https://example.org/?u=jane%40example.com&p=2"),
            "https://example.org/?u=[e-mail]&p=2"
        );
    }

    #[test]
    fn full_ipv4_addresses() {
        for yes in [
            "203.0.113.77",
            "http://192.0.2.1:8080/x",
            "from 10.1.2.3, hello",
            "ip=255.255.255.255",
        ] {
            assert!(found(Kind::Ipv4, yes), "{yes}");
        }
        for no in [
            "203.0.0.0",
            "203.0.113.0",
            "1.2.3.4.5",
            "app-1.2.3.4.zip",
            "256.1.1.1",
            "version 1.2.3",
            "11.2.3.456",
        ] {
            assert!(!found(Kind::Ipv4, no), "{no}");
        }
        assert_eq!(redact("http://192.0.2.1:8080/x"), "http://[IPv4]:8080/x");
    }

    #[test]
    fn full_ipv6_addresses() {
        for yes in [
            "2001:db8:85a3:1234:5678:8a2e:370:7334",
            "x=2001:db8::1&y",
            "[2001:DB8:85A3::8A2E:370:7334]",
            "fe80::1:2",
        ] {
            assert!(found(Kind::Ipv6, yes), "{yes}");
        }
        for no in [
            "2001:db8:85a3::",
            "fe80::1",
            "12:30:45",
            "00:1a:2b:3c:4d:5e",
            "std::vector",
            "::1",
        ] {
            assert!(!found(Kind::Ipv6, no), "{no}");
        }
    }

    #[test]
    fn click_identifiers_as_parameters_in_any_case() {
        for yes in [
            "https://example.org/?gclid=abc",
            "https://example.org/?a=1&FBCLID=x",
            "https://example.org/landing?utm_source=x&msclkid=1",
            "next=%2Fp%3Fdclid%3D42",
            "?_gl=1*abc",
        ] {
            assert!(found(Kind::ClickId, yes), "{yes}");
        }
        for no in [
            "https://example.org/gclid",
            "https://example.org/?xgclid=1",
            "the gclid parameter",
        ] {
            assert!(!found(Kind::ClickId, no), "{no}");
        }
        assert_eq!(
            redact("https://example.org/?a=1&gclid=Cj0KCQ&b=2"),
            "https://example.org/?a=1&[click id]&b=2"
        );
        // Every kind is redacted in an example, not only the one it was found for.
        assert_eq!(
            redact("/?u=jane@example.com&gclid=x&ip=2001:db8::1"),
            "/?u=[e-mail]&[click id]&ip=[IPv6]"
        );
    }

    #[test]
    fn examples_are_short() {
        let long = format!("{}jane@example.com", "a/".repeat(200));
        let r = redact(&long);
        assert_eq!(r.chars().count(), 161);
        assert!(!r.contains("jane"));
    }

    #[test]
    fn what_tally_writes_passes_the_prefilter_and_the_exact_check() {
        let samples = [
            "203.0.113.77",
            "198.51.100.7",
            "10.255.0.1",
            "0.0.0.0",
            "2001:db8:85a3:1234:5678:8a2e:370:7334",
            "2001:0:85a3:1234::1",
            "0:0:1:2:3:4:5:6",
            "2a02:8109:b6c3:9d00:a5f1:e3b7:c9d4:f1e7",
            "::",
            "::ffff:203.0.113.99",
        ];
        for bytes in 1..=3u8 {
            let pre = regex::Regex::new(&truncated_pattern(bytes)).unwrap();
            for s in samples {
                let stored = TruncatedIp::new(s.parse().unwrap(), bytes).to_string();
                assert!(pre.is_match(&stored), "{bytes}: {s} -> {stored}");
                assert_eq!(keeps_too_much(&stored, bytes), None, "{stored}");
            }
        }
    }

    #[test]
    fn the_prefilter_passes_no_full_address() {
        for bytes in 1..=3u8 {
            let pre = regex::Regex::new(&truncated_pattern(bytes)).unwrap();
            for s in [
                "203.0.113.77",
                "203.0.113.0",
                "2001:db8:85a3:1234:5678::",
                "2001:db8::1",
                "2001:db8:85a3:1234::",
                "",
                "garbage",
            ] {
                let truncated = keeps_too_much(s, bytes).is_none();
                assert!(
                    !pre.is_match(s) || truncated,
                    "{bytes}: {s} passes the prefilter"
                );
            }
        }
        // Fewer bytes masked than configured.
        assert!(keeps_too_much("203.0.113.0", 2).is_some());
        assert!(keeps_too_much("203.0.113.0", 1).is_none());
        assert!(keeps_too_much("2001:db8:85a3:1234::", 2).is_some());
        assert!(keeps_too_much("2001:db8:85a3:1234::", 1).is_none());
        assert!(keeps_too_much("2001:db8:85a3::", 2).is_none());
        assert!(keeps_too_much("2001:d00::", 3).is_none());
        assert!(keeps_too_much("2001:db8::", 3).is_some());
        assert!(keeps_too_much("::ffff:203.0.0.0", 2).is_none());
        assert!(keeps_too_much("::ffff:203.0.113.9", 2).is_some());
        assert_eq!(keeps_too_much("nope", 2), Some("not an address"));
    }

    #[test]
    fn redacted_addresses_show_only_the_kept_bytes() {
        assert_eq!(redact_address("203.0.113.77", 2), "203.0.x.x");
        assert_eq!(redact_address("203.0.113.77", 1), "203.0.113.x");
        assert_eq!(
            redact_address("2001:db8:85a3:1234:5678::9", 2),
            "2001:db8:85a3:x:x:x:x:x"
        );
        assert_eq!(redact_address("::ffff:203.0.113.9", 3), "::ffff:203.x.x.x");
        assert_eq!(
            redact_address("secret", 2),
            "(6 characters, not an address)"
        );
    }
}
