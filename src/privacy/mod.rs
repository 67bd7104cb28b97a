//! Privacy on arrival: everything that protects the visitor before a hit goes any further.
//!
//! - [`ip`]: the full address type, which can only be located and truncated, and the
//!   truncated one, the only form of a client address that is ever kept;
//! - [`arrival`]: finds the client address of a request (socket peer, trusted proxies),
//!   checks the exclusion list and truncates it, in one function;
//! - [`signals`]: the visitor's own refusal (opt-out cookie, `DNT`, `Sec-GPC`).

pub mod arrival;
pub mod ip;
pub mod signals;

pub use arrival::{Excluded, anonymize, arrive, is_trusted_proxy, parse_client_ip};
pub use ip::{FullIp, Geolocate, TruncatedIp};
pub use signals::{Refusal, refusal};
