//! The arrival function: the one place a full client address exists.
//!
//! It is read from the socket (or, behind trusted proxies, from the forwarding headers),
//! checked against the exclusion list and truncated before [`arrive`] returns. Nothing it
//! returns can hold the full address; the optional `peek` callback is the single, explicit
//! door for uses that need it in memory (a geolocation lookup on the full address, when the
//! operator enabled that), and it gets the address by value only for the duration of the call.

use std::net::IpAddr;

use hyper::HeaderMap;
use ipnet::IpNet;

use super::ip::TruncatedIp;
use crate::config::PrivacyConfig;

/// The client is in `exclude_ips`: its hits are not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Excluded;

/// Resolves, checks and truncates the client address of a request arriving from `peer`.
///
/// `peek` sees the full address once, in memory, before truncation; pass `|_| ()` when nothing
/// needs it.
pub fn arrive<T>(
    peer: IpAddr,
    headers: &HeaderMap,
    cfg: &PrivacyConfig,
    peek: impl FnOnce(IpAddr) -> T,
) -> Result<(TruncatedIp, T), Excluded> {
    let client = client_addr(peer, headers, &cfg.trusted_proxies);
    let truncated = anonymize(client, cfg)?;
    Ok((truncated, peek(client)))
}

/// Checks `ip` against the exclusion list and truncates it. Also used for an address given by
/// an authenticated client (`cip`), so that it is treated exactly like a socket address.
pub fn anonymize(ip: IpAddr, cfg: &PrivacyConfig) -> Result<TruncatedIp, Excluded> {
    let ip = canonical(ip);
    if cfg.exclude_ips.iter().any(|net| net.contains(&ip)) {
        return Err(Excluded);
    }
    Ok(TruncatedIp::new(ip, cfg.ip_bytes))
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket's view of an IPv4 client) as plain IPv4,
/// so that IPv4 networks in the configuration match them.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    let ip = canonical(ip);
    proxies.iter().any(|net| net.contains(&ip))
}

/// The client address: the socket peer, unless the peer is a trusted proxy, in which case the
/// forwarding chain is walked from the right and the first hop that is not itself a trusted
/// proxy is the client. Hops left of it were written by the client and prove nothing.
fn client_addr(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    if proxies.is_empty() || !trusted(peer, proxies) {
        return peer;
    }
    let chain = forwarded_chain(headers);
    let mut current = peer;
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) => {
                current = *ip;
                if !trusted(current, proxies) {
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
        arrive(peer.parse().unwrap(), &headers(h), c, |_| ()).map(|(ip, ())| ip.to_string())
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
    fn peek_sees_full_address_only_inside() {
        let c = cfg(&[], &[]);
        let (ip, seen) = arrive(
            "203.0.113.77".parse().unwrap(),
            &HeaderMap::new(),
            &c,
            |full| full.to_string().len(),
        )
        .unwrap();
        assert_eq!(ip.to_string(), "203.0.0.0");
        assert_eq!(seen, "203.0.113.77".len());
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
