//! Warnings about a `[privacy] trusted_proxies` that does not match how requests arrive.
//!
//! The client address, and so the truncated address and the country stored for a hit, comes
//! from the socket peer unless that peer is a trusted proxy ([`super::arrival`]). Two mistakes
//! are easy to make and silent without these warnings:
//!
//! - **too broad** (`0.0.0.0/0`, `::/0`, any IPv4 prefix shorter than /8 or IPv6 prefix shorter
//!   than /32): every peer, including any visitor talking to tally directly, is "a proxy", so
//!   anyone can write the address tally stores (and the one `exclude_ips` checks) into
//!   `X-Forwarded-For`. [`warn_broad_ranges`] names each such range once at start.
//! - **missing or incomplete** (empty, or the reverse proxy's address not in it): the proxy's
//!   forwarding headers are ignored and every visitor looks like the proxy: one address, one
//!   country (or none), visits of different people merged. [`UntrustedForwarding`] notices a
//!   request carrying `X-Forwarded-For` or `Forwarded` from a peer that is not trusted and
//!   warns the first time and then at most once an hour, naming the peer only truncated.
//!
//! The second check runs on every hit, so it first reads one atomic (the time before which it
//! stays quiet) and looks at the headers only when a warning is due.

use std::sync::atomic::{AtomicU32, Ordering};

use hyper::HeaderMap;
use ipnet::IpNet;

use super::ip::{FullIp, TruncatedIp};
use crate::config::PrivacyConfig;

/// IPv4 ranges with a prefix shorter than this are "broad": /8 is the largest block ever
/// allocated to one network (and the private `10.0.0.0/8`), anything larger spans many owners.
const BROADEST_V4_PREFIX: u8 = 8;
/// IPv6 ranges with a prefix shorter than this are "broad": /32 is the usual size of a whole
/// provider's allocation, so a shorter one trusts several unrelated networks.
const BROADEST_V6_PREFIX: u8 = 32;
/// After a warning about forwarding headers from an untrusted peer, the next one waits this long.
pub const UNTRUSTED_FORWARDING_INTERVAL_SECS: u32 = 3600;

/// The ranges of `proxies` that cover a broad part of the address space (see the module
/// documentation), in the configured order.
pub fn broad_ranges(proxies: &[IpNet]) -> Vec<IpNet> {
    proxies
        .iter()
        .filter(|net| match net {
            IpNet::V4(n) => n.prefix_len() < BROADEST_V4_PREFIX,
            IpNet::V6(n) => n.prefix_len() < BROADEST_V6_PREFIX,
        })
        .copied()
        .collect()
}

/// Logs one warning per broad range of `[privacy] trusted_proxies` (see [`broad_ranges`]);
/// called once by `tally serve` at start. Returns how many it logged.
pub fn warn_broad_ranges(cfg: &PrivacyConfig) -> usize {
    let broad = broad_ranges(&cfg.trusted_proxies);
    for net in &broad {
        tracing::warn!(
            range = %net,
            "[privacy] trusted_proxies holds {net}, which covers a broad part of the internet: \
             anyone who reaches tally directly can forge X-Forwarded-For and choose the address \
             (and country) stored for their hits and escape exclude_ips; list only the \
             addresses of your own reverse proxies (e.g. \"127.0.0.1/32\", \"10.0.0.5/32\")"
        );
    }
    broad.len()
}

/// Warns, at most once per [`UNTRUSTED_FORWARDING_INTERVAL_SECS`], when a request carries
/// forwarding headers from a peer that is not a trusted proxy. One instance per process
/// ([`UntrustedForwarding::global`]); tests make their own.
#[derive(Debug, Default)]
pub struct UntrustedForwarding {
    /// Unix time before which nothing is checked or logged; 0: not warned yet.
    quiet_until: AtomicU32,
}

static GLOBAL: UntrustedForwarding = UntrustedForwarding::new();

impl UntrustedForwarding {
    /// A checker that has not warned yet.
    pub const fn new() -> UntrustedForwarding {
        UntrustedForwarding {
            quiet_until: AtomicU32::new(0),
        }
    }

    /// The process-wide checker that [`super::arrive`] uses.
    pub fn global() -> &'static UntrustedForwarding {
        &GLOBAL
    }

    /// Checks one request arriving from `peer` at unix time `now`. When a warning is due (none
    /// yet, or the last one an hour ago) and the request has `X-Forwarded-For` or `Forwarded`
    /// while `peer` is not in `trusted_proxies`, logs it and returns the truncated peer it
    /// named; otherwise `None`. Only the first caller of concurrent ones logs.
    pub fn check(
        &self,
        peer: &FullIp,
        headers: &HeaderMap,
        cfg: &PrivacyConfig,
        now: u32,
    ) -> Option<TruncatedIp> {
        // The hot path: one relaxed load while a warning is not due.
        let until = self.quiet_until.load(Ordering::Relaxed);
        if now < until {
            return None;
        }
        if !(headers.contains_key("x-forwarded-for") || headers.contains_key("forwarded")) {
            return None;
        }
        if peer.within(&cfg.trusted_proxies) {
            return None;
        }
        let next = now.saturating_add(UNTRUSTED_FORWARDING_INTERVAL_SECS);
        // Another thread may have just warned; it wins, this one stays quiet.
        if self
            .quiet_until
            .compare_exchange(until, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        let shown = peer.truncate(cfg.ip_bytes);
        if cfg.trusted_proxies.is_empty() {
            tracing::warn!(
                peer = %shown,
                "a request carries X-Forwarded-For/Forwarded but [privacy] trusted_proxies is \
                 empty, so the header is ignored: behind a reverse proxy every visitor looks \
                 like the proxy ({shown}, shown truncated). Add the proxy's address to \
                 trusted_proxies; if no proxy is in front of tally, a client sent the header \
                 itself and nothing is wrong (next warning in an hour at the earliest)"
            );
        } else {
            tracing::warn!(
                peer = %shown,
                "a request carries X-Forwarded-For/Forwarded from a peer ({shown}, shown \
                 truncated) that is not in [privacy] trusted_proxies, so the header is ignored: \
                 if that peer is your reverse proxy, every visitor behind it looks like the \
                 proxy; add its address to trusted_proxies (next warning in an hour at the \
                 earliest)"
            );
        }
        Some(shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::header_map as headers;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn cfg(trusted: &[&str]) -> PrivacyConfig {
        PrivacyConfig {
            trusted_proxies: nets(trusted),
            ..PrivacyConfig::default()
        }
    }

    fn peer(s: &str) -> FullIp {
        FullIp::of_peer(s.parse().unwrap())
    }

    #[test]
    fn broad_ranges_are_named() {
        let all = nets(&[
            "0.0.0.0/0",
            "::/0",
            "128.0.0.0/1",
            "10.0.0.0/8",
            "127.0.0.1/32",
            "2000::/3",
            "2001:db8::/32",
            "fd00::/8",
            "::1/128",
        ]);
        let broad: Vec<String> = broad_ranges(&all).iter().map(|n| n.to_string()).collect();
        // fd00::/8 is a unique-local range, but at /8 it spans every private IPv6 network: the
        // rule is about size, not about who owns the range.
        assert_eq!(
            broad,
            ["0.0.0.0/0", "::/0", "128.0.0.0/1", "2000::/3", "fd00::/8"]
        );
        assert!(broad_ranges(&nets(&["7.0.0.0/7"])).len() == 1);
        assert!(broad_ranges(&nets(&["192.168.0.0/16", "2001:db8:1::/48"])).is_empty());
        assert!(broad_ranges(&[]).is_empty());
    }

    #[test]
    fn start_warning_counts_each_broad_range() {
        assert_eq!(warn_broad_ranges(&cfg(&["0.0.0.0/0", "::/0"])), 2);
        assert_eq!(warn_broad_ranges(&cfg(&["127.0.0.1/32", "::1/128"])), 0);
        assert_eq!(warn_broad_ranges(&cfg(&[])), 0);
    }

    #[test]
    fn forwarding_from_untrusted_peer_warns_once_an_hour_with_a_truncated_peer() {
        let w = UntrustedForwarding::new();
        let c = cfg(&[]);
        let xff = headers(&[("x-forwarded-for", "198.51.100.7")]);
        let t0 = 1_700_000_000;
        let shown = w.check(&peer("203.0.113.77"), &xff, &c, t0).unwrap();
        // Truncated with the configured ip_bytes (2: /16), never the full address.
        assert_eq!(shown.to_string(), "203.0.0.0");
        // Quiet for an hour, whatever arrives.
        assert!(w.check(&peer("203.0.113.77"), &xff, &c, t0 + 1).is_none());
        assert!(
            w.check(
                &peer("192.0.2.1"),
                &xff,
                &c,
                t0 + UNTRUSTED_FORWARDING_INTERVAL_SECS - 1
            )
            .is_none()
        );
        // Then once more.
        let again = w
            .check(
                &peer("192.0.2.1"),
                &xff,
                &c,
                t0 + UNTRUSTED_FORWARDING_INTERVAL_SECS,
            )
            .unwrap();
        assert_eq!(again.to_string(), "192.0.0.0");
        assert!(
            w.check(
                &peer("192.0.2.1"),
                &xff,
                &c,
                t0 + UNTRUSTED_FORWARDING_INTERVAL_SECS + 5
            )
            .is_none()
        );
    }

    #[test]
    fn forwarded_header_and_ipv6_peer_count_too() {
        let w = UntrustedForwarding::new();
        let c = cfg(&["10.0.0.0/8"]);
        let fwd = headers(&[("forwarded", "for=198.51.100.7")]);
        let shown = w.check(&peer("2001:db8:1:2:3::4"), &fwd, &c, 100).unwrap();
        assert_eq!(shown.to_string(), "2001:db8:1::");
    }

    #[test]
    fn no_warning_without_headers_or_from_a_trusted_peer() {
        let w = UntrustedForwarding::new();
        let c = cfg(&["127.0.0.1/32", "::1/128"]);
        // No forwarding header: a direct visitor, nothing to say.
        assert!(
            w.check(&peer("203.0.113.77"), &HeaderMap::new(), &c, 100)
                .is_none()
        );
        let xff = headers(&[("x-forwarded-for", "198.51.100.7")]);
        // The trusted proxy (also as an IPv4-mapped IPv6 socket address).
        assert!(w.check(&peer("127.0.0.1"), &xff, &c, 100).is_none());
        assert!(w.check(&peer("::ffff:127.0.0.1"), &xff, &c, 100).is_none());
        assert!(w.check(&peer("::1"), &xff, &c, 100).is_none());
        // None of these used up the warning: the first real case still warns.
        assert!(w.check(&peer("192.0.2.9"), &xff, &c, 101).is_some());
    }

    /// What `f` logs, as the collector's stderr would show it.
    fn logged(f: impl FnOnce()) -> String {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buf.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_log_lines_name_the_range_and_never_the_full_peer() {
        let start = logged(|| {
            warn_broad_ranges(&cfg(&["0.0.0.0/0", "127.0.0.1/32"]));
        });
        assert!(start.contains("WARN"), "{start}");
        // One line, for the broad range only (the narrow one is fine).
        assert_eq!(start.matches("WARN").count(), 1, "{start}");
        assert!(start.contains("range=0.0.0.0/0"), "{start}");
        let w = UntrustedForwarding::new();
        let xff = headers(&[("x-forwarded-for", "198.51.100.7")]);
        let line = logged(|| {
            w.check(&peer("203.0.113.77"), &xff, &cfg(&[]), 100);
        });
        assert!(
            line.contains("WARN") && line.contains("203.0.0.0"),
            "{line}"
        );
        assert!(line.contains("trusted_proxies is empty"), "{line}");
        assert!(!line.contains("203.0.113"), "{line}");
        // The forwarded address is not logged either.
        assert!(!line.contains("198.51"), "{line}");
    }

    #[test]
    fn concurrent_callers_warn_once() {
        let w = std::sync::Arc::new(UntrustedForwarding::new());
        let c = std::sync::Arc::new(cfg(&[]));
        let warned: usize = (0..8)
            .map(|_| {
                let (w, c) = (w.clone(), c.clone());
                std::thread::spawn(move || {
                    let xff = headers(&[("x-forwarded-for", "198.51.100.7")]);
                    (0..1000)
                        .filter(|_| w.check(&peer("203.0.113.77"), &xff, &c, 500).is_some())
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(warned, 1);
    }
}
