//! The two forms of a client address: the full one, which only this module can make and which
//! can do nothing but be located and truncated, and the truncated one, which is all that is
//! ever kept.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A geolocation database, as far as `privacy` is concerned: something that turns an address
/// into a location and keeps nothing. Implemented by `enrich::GeoDb`; sealed, so that no other
/// type can stand in and receive a full address.
pub trait Geolocate: sealed::Sealed {
    /// What a lookup gives.
    type Location;
    /// Looks `ip` up, in memory.
    fn locate_addr(&self, ip: IpAddr) -> Self::Location;
}

pub(crate) mod sealed {
    /// Only this crate's geolocation database may implement [`super::Geolocate`].
    pub trait Sealed {}
}

/// A client's full address, as it arrived.
///
/// It implements neither `Display`, `Debug`, `Clone` nor `Serialize`: it cannot be printed,
/// logged, copied into a struct that outlives the request, or stored. Only [`FullIp::of_peer`]
/// (for the socket a request came from) and `privacy` itself (`cip`, forwarding headers) make
/// one, and the only things it can do are [`FullIp::truncate`] and [`FullIp::locate`].
pub struct FullIp(IpAddr);

impl FullIp {
    /// The address of the socket a request came from: the one door from the network into
    /// this type outside `privacy`.
    pub fn of_peer(peer: IpAddr) -> FullIp {
        FullIp(canonical(peer))
    }

    /// From an address `privacy` has parsed (`cip`, a forwarding header).
    pub(super) fn new(ip: IpAddr) -> FullIp {
        FullIp(canonical(ip))
    }

    /// Looks the full address up in a geolocation database, in memory; only the location
    /// comes back.
    pub fn locate<G: Geolocate>(&self, db: &G) -> G::Location {
        db.locate_addr(self.0)
    }

    /// The truncated form: `bytes` as in [`TruncatedIp::new`].
    pub fn truncate(&self, bytes: u8) -> TruncatedIp {
        TruncatedIp::new(self.0, bytes)
    }

    /// Whether the address lies in one of `nets` (trusted proxies, exclusions, who may read
    /// `/metrics`): a question answered here, the address itself never handed out.
    pub fn within(&self, nets: &[ipnet::IpNet]) -> bool {
        nets.iter().any(|net| net.contains(&self.0))
    }
}

/// The secret of this process's [`ThrottleKey`]s: 32 random bytes made at start and kept only
/// in memory.
pub struct ThrottleKeyer(ring::hmac::Key);

impl ThrottleKeyer {
    /// A new random secret from the system's generator; `None` if it has no entropy.
    pub fn new() -> Option<ThrottleKeyer> {
        let rng = ring::rand::SystemRandom::new();
        ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .ok()
            .map(ThrottleKeyer)
    }
}

/// What a client address becomes for counting its failed sign-ins: the first 16 bytes of
/// `HMAC-SHA256(secret, address)`, where the secret is random per process ([`ThrottleKeyer`])
/// and an IPv6 address is first cut to its `/64` (one subscriber line, which holds billions of
/// addresses an attacker could rotate through).
///
/// Why it is safe to hold: it lives only in the collector's memory (the type is neither
/// `Display`, `Serialize` nor written anywhere, and its `Debug` shows nothing), for at most the
/// throttle's window; without the secret, which never leaves the process and is new at every
/// start, it cannot be turned back into an address even by trying all 2^32 IPv4 addresses; and
/// two collectors, or one collector after a restart, give the same address different keys, so
/// nothing links them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThrottleKey([u8; 16]);

impl fmt::Debug for ThrottleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ThrottleKey(..)")
    }
}

impl FullIp {
    /// The key under which this client's failed sign-ins are counted; see [`ThrottleKey`].
    pub fn throttle_key(&self, keyer: &ThrottleKeyer) -> ThrottleKey {
        let bytes: Vec<u8> = match self.0 {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => truncate_v6(v6, 1).octets().to_vec(),
        };
        let tag = ring::hmac::sign(&keyer.0, &bytes);
        let mut out = [0u8; 16];
        out.copy_from_slice(&tag.as_ref()[..16]);
        ThrottleKey(out)
    }
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket's view of an IPv4 client) as plain IPv4,
/// so that IPv4 networks in the configuration match them.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A client address with its host part zeroed. It can only be made by [`TruncatedIp::new`],
/// so holding one proves the truncation happened; the full address never needs to be kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TruncatedIp(IpAddr);

impl TruncatedIp {
    /// Truncates `ip`, removing `bytes` (1, 2 or 3; clamped to that range) as Matomo does:
    /// IPv4 zeroes the last `bytes` bytes (2: `/16`); IPv6 keeps `/64`, `/48` or `/24` for 1, 2 or 3.
    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is treated as the IPv4 address it carries.
    pub fn new(ip: IpAddr, bytes: u8) -> TruncatedIp {
        let bytes = bytes.clamp(1, 3);
        match ip {
            IpAddr::V4(v4) => TruncatedIp(IpAddr::V4(truncate_v4(v4, bytes))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => TruncatedIp(IpAddr::V4(truncate_v4(v4, bytes))),
                None => TruncatedIp(IpAddr::V6(truncate_v6(v6, bytes))),
            },
        }
    }

    /// The truncated address.
    pub fn addr(self) -> IpAddr {
        self.0
    }
}

fn truncate_v4(ip: Ipv4Addr, bytes: u8) -> Ipv4Addr {
    let keep_bits = 32 - 8 * u32::from(bytes);
    let mask = u32::MAX.checked_shl(32 - keep_bits).unwrap_or(0);
    Ipv4Addr::from(u32::from(ip) & mask)
}

fn truncate_v6(ip: Ipv6Addr, bytes: u8) -> Ipv6Addr {
    // Matomo's IPv6 masks: an IPv6 /64 is one subscriber line, so even "one byte" removes 64 bits.
    let keep_bits: u32 = match bytes {
        1 => 64,
        2 => 48,
        _ => 24,
    };
    let mask = u128::MAX << (128 - keep_bits);
    Ipv6Addr::from(u128::from(ip) & mask)
}

impl fmt::Display for TruncatedIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for TruncatedIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TruncatedIp({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The full address can be neither printed, copied nor serialised; adding any of these
    // would break this build.
    static_assertions::assert_not_impl_any!(
        FullIp: fmt::Display,
        fmt::Debug,
        Clone,
        Copy,
        serde::Serialize,
        ToString
    );

    fn t(ip: &str, bytes: u8) -> String {
        TruncatedIp::new(ip.parse().unwrap(), bytes).to_string()
    }

    #[test]
    fn ipv4() {
        assert_eq!(t("192.168.3.4", 2), "192.168.0.0");
        assert_eq!(t("203.0.113.77", 2), "203.0.0.0");
        assert_eq!(t("203.0.113.77", 1), "203.0.113.0");
        assert_eq!(t("203.0.113.77", 3), "203.0.0.0");
        assert_eq!(t("198.51.100.7", 3), "198.0.0.0");
        assert_eq!(t("255.255.255.255", 3), "255.0.0.0");
        assert_eq!(t("0.0.0.0", 2), "0.0.0.0");
    }

    #[test]
    fn ipv6_uses_matomo_masks() {
        let ip = "2001:db8:85a3:1234:5678:8a2e:370:7334";
        assert_eq!(t(ip, 1), "2001:db8:85a3:1234::");
        assert_eq!(t(ip, 2), "2001:db8:85a3::");
        assert_eq!(t(ip, 3), "2001:d00::");
    }

    #[test]
    fn ipv4_mapped_is_ipv4() {
        assert_eq!(t("::ffff:203.0.113.77", 2), "203.0.0.0");
        assert_eq!(t("::ffff:10.1.2.3", 1), "10.1.2.0");
    }

    #[test]
    fn out_of_range_bytes_are_clamped_never_weaker() {
        assert_eq!(t("203.0.113.77", 0), "203.0.113.0");
        assert_eq!(t("203.0.113.77", 9), "203.0.0.0");
    }

    #[test]
    fn throttle_keys_are_keyed_per_process_and_cover_an_ipv6_line() {
        let a = ThrottleKeyer::new().unwrap();
        let b = ThrottleKeyer::new().unwrap();
        let ip = |s: &str| FullIp::of_peer(s.parse().unwrap());
        let k = ip("203.0.113.7").throttle_key(&a);
        assert_eq!(k, ip("203.0.113.7").throttle_key(&a));
        assert_eq!(k, ip("::ffff:203.0.113.7").throttle_key(&a));
        assert_ne!(k, ip("203.0.113.8").throttle_key(&a));
        // Another process (another secret) cannot recognise the address.
        assert_ne!(k, ip("203.0.113.7").throttle_key(&b));
        // One IPv6 /64 is one client.
        assert_eq!(
            ip("2001:db8:1:2::1").throttle_key(&a),
            ip("2001:db8:1:2:ffff::9").throttle_key(&a)
        );
        assert_ne!(
            ip("2001:db8:1:2::1").throttle_key(&a),
            ip("2001:db8:1:3::1").throttle_key(&a)
        );
        assert_eq!(format!("{k:?}"), "ThrottleKey(..)");
    }

    static_assertions::assert_not_impl_any!(ThrottleKey: fmt::Display, serde::Serialize);

    #[test]
    fn debug_shows_only_the_truncated_form() {
        let ip = TruncatedIp::new("203.0.113.77".parse().unwrap(), 2);
        assert_eq!(format!("{ip:?}"), "TruncatedIp(203.0.0.0)");
    }
}
