//! Ingestion: the Matomo HTTP Tracking API endpoint.
//!
//! A request is read ([`track`]), its parameters bounded ([`params`], [`bulk`]) and turned into
//! events ([`hit`]); refusals get a one-line reason ([`reject`], [`response`]). The few calls
//! of Matomo's HTTP API that sending tools make before tracking are answered by
//! [`matomo_api`]. Plausible's Events API (`/api/event`) is [`plausible`].

pub mod bulk;
pub mod hit;
pub mod matomo_api;
pub mod params;
pub mod plausible;
pub mod reject;
pub mod response;
pub mod track;
