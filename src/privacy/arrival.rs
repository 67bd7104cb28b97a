//! The arrival function: the one place a full client address exists.
//!
//! It is read from the socket (or, behind trusted proxies, from the forwarding headers),
//! checked against the exclusion list and truncated before [`arrive`] returns. Besides the
//! truncated address, [`arrive`] hands back the full one only as a [`FullIp`], which can be
//! located (when the operator enabled full-address geolocation) and nothing else.

use std::net::IpAddr;

use hyper::HeaderMap;
use ipnet::IpNet;

use super::ip::{FullIp, TruncatedIp};
use crate::config::PrivacyConfig;

/// The client is in `exclude_ips`: its hits are not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Excluded;

/// Resolves, checks and truncates the client address of a request arriving from `peer`.
///
/// Forwarding headers from a peer that is not a trusted proxy are ignored; the first such
/// request (then at most one an hour) is logged as a warning naming the peer truncated
/// ([`super::proxy_check`]): behind a proxy missing from `trusted_proxies` every visitor looks
/// like the proxy.
pub fn arrive(
    peer: FullIp,
    headers: &HeaderMap,
    cfg: &PrivacyConfig,
) -> Result<(TruncatedIp, FullIp), Excluded> {
    super::proxy_check::UntrustedForwarding::global().check(
        &peer,
        headers,
        cfg,
        crate::time::now_unix(),
    );
    let client = client_addr(peer, headers, &cfg.trusted_proxies);
    let truncated = anonymize(&client, cfg)?;
    Ok((truncated, client))
}

/// The client address of a request arriving from `peer` (behind trusted proxies, from the
/// forwarding headers), for a use that keeps nothing of it: the dashboard's sign-in throttle,
/// which turns it into a [`super::ThrottleKey`] at once.
pub fn client(peer: FullIp, headers: &HeaderMap, cfg: &PrivacyConfig) -> FullIp {
    client_addr(peer, headers, &cfg.trusted_proxies)
}

/// Checks an address against the exclusion list and truncates it. Also used for an address
/// given by an authenticated client (`cip`), so that it is treated exactly like a socket address.
pub fn anonymize(ip: &FullIp, cfg: &PrivacyConfig) -> Result<TruncatedIp, Excluded> {
    if ip.within(&cfg.exclude_ips) {
        return Err(Excluded);
    }
    Ok(ip.truncate(cfg.ip_bytes))
}

/// `cip`: an address a trusted server-side sender gives for its client.
pub fn parse_client_ip(s: &str) -> Option<FullIp> {
    s.trim().parse::<IpAddr>().ok().map(FullIp::new)
}

/// Whether the socket peer is one of the trusted proxies, whose forwarding headers
/// (`X-Forwarded-For`, `X-Forwarded-Proto`, `Forwarded`) are believed.
pub fn is_trusted_proxy(peer: &FullIp, cfg: &PrivacyConfig) -> bool {
    peer.within(&cfg.trusted_proxies)
}

/// The client address: the socket peer, unless the peer is a trusted proxy, in which case the
/// forwarding chain is walked from the right and the first hop that is not itself a trusted
/// proxy is the client. Hops left of it were written by the client and prove nothing.
fn client_addr(peer: FullIp, headers: &HeaderMap, proxies: &[IpNet]) -> FullIp {
    if proxies.is_empty() || !peer.within(proxies) {
        return peer;
    }
    let chain = forwarded_chain(headers);
    let mut current = peer;
    for hop in chain.into_iter().rev() {
        match hop {
            Some(ip) => {
                current = FullIp::new(ip);
                if !current.within(proxies) {
                    return current;
                }
            }
            // An unreadable hop ends the trust: the last address a trusted proxy vouched for is
            // the best we know.
            None => return current,
        }
    }
    current
}

/// Hops of `X-Forwarded-For` (all its header lines, in order) or, when absent, `Forwarded`.
/// `None` marks a hop that is not an address (`unknown`, obfuscated identifiers, garbage).
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
        .map(|s| parse_hop(s.trim()))
        .collect();
    if !xff.is_empty() {
        return xff;
    }
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("for=\u{0}").split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_hop(v.trim().trim_matches('"')))
            })
        })
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:5678`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(trusted: &[&str], exclude: &[&str]) -> PrivacyConfig {
        PrivacyConfig {
            trusted_proxies: trusted.iter().map(|s| s.parse().unwrap()).collect(),
            exclude_ips: exclude.iter().map(|s| s.parse().unwrap()).collect(),
            ..PrivacyConfig::default()
        }
    }

    use crate::test_support::header_map as headers;

    fn run(peer: &str, h: &[(&'static str, &str)], c: &PrivacyConfig) -> Result<String, Excluded> {
        arrive(FullIp::of_peer(peer.parse().unwrap()), &headers(h), c).map(|(ip, _)| ip.to_string())
    }

    #[test]
    fn socket_peer_is_truncated() {
        let c = cfg(&[], &[]);
        assert_eq!(run("203.0.113.77", &[], &c).unwrap(), "203.0.0.0");
        assert_eq!(run("2001:db8:1:2:3::4", &[], &c).unwrap(), "2001:db8:1::");
        assert_eq!(run("::ffff:203.0.113.77", &[], &c).unwrap(), "203.0.0.0");
    }

    #[test]
    fn forwarded_headers_ignored_from_untrusted_peer() {
        let c = cfg(&["10.0.0.0/8"], &[]);
        let h = [("x-forwarded-for", "198.51.100.1")];
        assert_eq!(run("203.0.113.77", &h, &c).unwrap(), "203.0.0.0");
        // No trusted proxies configured at all: never believed.
        assert_eq!(run("10.0.0.1", &h, &cfg(&[], &[])).unwrap(), "10.0.0.0");
    }

    #[test]
    fn rightmost_untrusted_hop_from_trusted_peer() {
        let c = cfg(&["10.0.0.0/8"], &[]);
        // The client forged the first entry; the right-most untrusted hop is the real client.
        let h = [("x-forwarded-for", "1.1.1.1, 198.51.100.1, 10.0.0.5")];
        assert_eq!(run("10.0.0.1", &h, &c).unwrap(), "198.51.0.0");
        // Several header lines form one chain.
        let h = [
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.1"),
        ];
        assert_eq!(run("10.0.0.1", &h, &c).unwrap(), "198.51.0.0");
        // Only trusted hops: the left-most is the best we know.
        let h = [("x-forwarded-for", "10.9.9.9, 10.0.0.5")];
        assert_eq!(run("10.0.0.1", &h, &c).unwrap(), "10.9.0.0");
        // A garbage hop stops the walk at the last vouched-for address.
        let h = [("x-forwarded-for", "198.51.100.1, garbage, 10.0.0.5")];
        assert_eq!(run("10.0.0.1", &h, &c).unwrap(), "10.0.0.0");
        // Ports are allowed.
        let h = [("x-forwarded-for", "198.51.100.1:4711")];
        assert_eq!(run("10.0.0.1", &h, &c).unwrap(), "198.51.0.0");
    }

    #[test]
    fn ipv6_and_mapped_proxies() {
        let c = cfg(&["::1/128", "127.0.0.0/8"], &[]);
        let h = [("x-forwarded-for", "2001:db8:85a3:1234::1")];
        assert_eq!(run("::1", &h, &c).unwrap(), "2001:db8:85a3::");
        assert_eq!(run("::ffff:127.0.0.1", &h, &c).unwrap(), "2001:db8:85a3::");
    }

    #[test]
    fn rfc7239_forwarded() {
        let c = cfg(&["10.0.0.0/8"], &[]);
        let h = [(
            "forwarded",
            r#"for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711""#,
        )];
        assert_eq!(run("10.0.0.1", &h, &c).unwrap(), "2001:db8:cafe::");
        let h = [("forwarded", "for=unknown")];
        assert_eq!(run("10.0.0.1", &h, &c).unwrap(), "10.0.0.0");
        // X-Forwarded-For wins when both are present.
        let h = [
            ("forwarded", "for=192.0.2.60"),
            ("x-forwarded-for", "198.51.100.1"),
        ];
        assert_eq!(run("10.0.0.1", &h, &c).unwrap(), "198.51.0.0");
    }

    #[test]
    fn exclusion_uses_the_full_address() {
        let c = cfg(&["10.0.0.0/8"], &["203.0.113.77/32", "2001:db8::/32"]);
        assert_eq!(run("203.0.113.77", &[], &c), Err(Excluded));
        // Same /16, different host: not excluded.
        assert_eq!(run("203.0.113.78", &[], &c).unwrap(), "203.0.0.0");
        assert_eq!(run("2001:db8::1", &[], &c), Err(Excluded));
        assert_eq!(run("::ffff:203.0.113.77", &[], &c), Err(Excluded));
        let h = [("x-forwarded-for", "203.0.113.77")];
        assert_eq!(run("10.0.0.1", &h, &c), Err(Excluded));
    }

    #[test]
    fn full_address_is_only_located_or_truncated() {
        let c = cfg(&[], &[]);
        let (ip, full) = arrive(
            FullIp::of_peer("203.0.113.77".parse().unwrap()),
            &HeaderMap::new(),
            &c,
        )
        .unwrap();
        assert_eq!(ip.to_string(), "203.0.0.0");
        assert_eq!(full.truncate(1).to_string(), "203.0.113.0");
        assert_eq!(
            parse_client_ip(" 2001:db8::1 ")
                .unwrap()
                .truncate(2)
                .to_string(),
            "2001:db8::"
        );
        assert!(parse_client_ip("not an address").is_none());
    }

    #[test]
    fn ip_bytes_setting_applies() {
        let mut c = cfg(&[], &[]);
        c.ip_bytes = 1;
        assert_eq!(run("203.0.113.77", &[], &c).unwrap(), "203.0.113.0");
        c.ip_bytes = 3;
        assert_eq!(run("203.0.113.77", &[], &c).unwrap(), "203.0.0.0");
    }
}
