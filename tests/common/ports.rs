//! Loopback ports for test servers that are stopped and started again on the same ports (the
//! fault tests' ClickHouse, the cluster tests' ZooKeeper and ClickHouse nodes).

use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};

/// A free loopback port below the kernel's ephemeral range.
///
/// These servers are stopped and started again on the same ports. A port from `bind(0)` is
/// in the ephemeral range, so while the server is down another test's `bind(0)` (or its
/// ClickHouse) may be handed the same port, and tally would then write to a stranger's
/// server. Below the range the kernel never hands a port out on its own; the start is spread
/// by process id so two test binaries running at once rarely probe the same ports.
pub fn stable_port() -> u16 {
    const LOW: u16 = 20_000;
    const SPAN: u16 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let span = SPAN.min(ephemeral_low.saturating_sub(LOW)).max(1000);
    let base = (std::process::id() % u32::from(span)) as u16;
    loop {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = LOW + (base.wrapping_add(step.wrapping_mul(7))) % span;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
