//! Ingestion: the Matomo HTTP Tracking API endpoint.
//!
//! A request is read ([`track`]), its parameters bounded ([`params`], [`bulk`]) and turned into
//! events ([`hit`]); refusals get a one-line reason ([`reject`], [`response`]).

pub mod bulk;
pub mod hit;
pub mod params;
pub mod reject;
pub mod response;
pub mod track;
