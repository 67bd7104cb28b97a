//! What the write path knows of its own health: set by the writer and the spool, read by
//! `/ready` and the logs. A small module of its own so that the request path reads it without
//! depending on the writer.

use std::sync::atomic::{AtomicBool, Ordering};

/// Readiness of the write path. Every flag starts pessimistic except the store, which the
/// collector has just reached when it starts serving (the migrations ran on it).
#[derive(Debug)]
pub struct WriteStatus {
    store_ok: AtomicBool,
    schema_ready: AtomicBool,
    spool_full: AtomicBool,
}

impl Default for WriteStatus {
    fn default() -> Self {
        WriteStatus {
            store_ok: AtomicBool::new(true),
            schema_ready: AtomicBool::new(false),
            spool_full: AtomicBool::new(false),
        }
    }
}

impl WriteStatus {
    /// Whether the last write or probe of ClickHouse succeeded.
    pub fn store_ok(&self) -> bool {
        self.store_ok.load(Ordering::Relaxed)
    }
    /// Records the outcome of a write or probe of ClickHouse.
    pub fn set_store_ok(&self, ok: bool) {
        self.store_ok.store(ok, Ordering::Relaxed);
    }
    /// Whether the schema migrations were applied.
    pub fn schema_ready(&self) -> bool {
        self.schema_ready.load(Ordering::Relaxed)
    }
    /// Records that the migrations were applied.
    pub fn set_schema_ready(&self, ready: bool) {
        self.schema_ready.store(ready, Ordering::Relaxed);
    }
    /// Whether the spool is at its cap (or cannot be written), so hits are refused.
    pub fn spool_full(&self) -> bool {
        self.spool_full.load(Ordering::Relaxed)
    }
    /// Records whether the spool refuses hits.
    pub fn set_spool_full(&self, full: bool) {
        self.spool_full.store(full, Ordering::Relaxed);
    }

    /// `Ok` when the collector can take hits and store them; else the first reason it cannot,
    /// for `/ready`'s one-line answer.
    pub fn ready(&self) -> Result<(), &'static str> {
        if !self.schema_ready() {
            return Err("schema migrations not applied");
        }
        if !self.store_ok() {
            return Err("ClickHouse unreachable");
        }
        if self.spool_full() {
            return Err("spool full");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_names_the_first_reason() {
        let s = WriteStatus::default();
        assert_eq!(s.ready(), Err("schema migrations not applied"));
        s.set_schema_ready(true);
        assert_eq!(s.ready(), Ok(()));
        s.set_spool_full(true);
        assert_eq!(s.ready(), Err("spool full"));
        s.set_store_ok(false);
        assert_eq!(s.ready(), Err("ClickHouse unreachable"));
    }
}
