//! Commands of the `tally` binary that are more than a call into the library: `tally report`,
//! `tally key`, `tally user`, `tally geo`, `tally subject`, `tally audit`, `tally prune`.
//! `src/main.rs` only parses the arguments.

pub mod audit;
pub mod geo;
pub mod key;
pub mod prune;
pub mod report;
pub mod subject;
pub mod user;
