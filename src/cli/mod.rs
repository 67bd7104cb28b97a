//! Commands of the `tally` binary that are more than a call into the library: `tally report`.

pub mod report;
