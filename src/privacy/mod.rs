//! Privacy on arrival: everything that protects the visitor before a hit goes any further.
//!
//! - [`ip`]: the full address type, which can only be located and truncated, and the
//!   truncated one, the only form of a client address that is ever kept;
//! - [`arrival`]: finds the client address of a request (socket peer, trusted proxies),
//!   checks the exclusion list and truncates it, in one function;
//! - [`ip::ThrottleKey`]: the only other use of a full address, an in-memory keyed hash that
//!   counts a client's failed sign-ins to the dashboard;
//! - [`signals`]: the visitor's own refusal (opt-out cookie, `DNT`, `Sec-GPC`);
//! - [`proxy_check`]: warnings when `trusted_proxies` is too broad (anyone can forge an
//!   address) or misses the proxy in front of tally (every visitor looks like the proxy).

pub mod arrival;
pub mod ip;
pub mod proxy_check;
pub mod signals;

pub use arrival::{Excluded, anonymize, arrive, client, is_trusted_proxy, parse_client_ip};
pub use ip::{FullIp, Geolocate, ThrottleKey, ThrottleKeyer, TruncatedIp};
pub use signals::{Refusal, refusal};
