//! Commands of the `tally` binary that are more than a call into the library: `tally report`,
//! `tally key`, `tally user`, `tally geo`, `tally subject`, `tally audit`. `src/main.rs` only parses
//! the arguments.

pub mod audit;
pub mod geo;
pub mod key;
pub mod report;
pub mod subject;
pub mod user;
