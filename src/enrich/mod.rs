//! Enrichment: what is added to an anonymised event before it is stored.

pub mod secrets;
pub mod visitor;
