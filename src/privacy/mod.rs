//! Privacy on arrival: everything that protects the visitor before a hit goes any further.
//!
//! - [`ip`]: the truncated address type, the only form of a client address that exists past
//!   the arrival function;
//! - [`arrival`]: finds the client address of a request (socket peer, trusted proxies),
//!   checks the exclusion list and truncates it, in one function;
//! - [`signals`]: the visitor's own refusal (opt-out cookie, `DNT`, `Sec-GPC`).

pub mod arrival;
pub mod ip;
pub mod signals;

pub use arrival::{Excluded, anonymize, arrive};
pub use ip::TruncatedIp;
pub use signals::{Refusal, refusal};
