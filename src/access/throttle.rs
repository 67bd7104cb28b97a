//! Slowing down password guessing: failed attempts counted per key (an account, a shared link,
//! a client's [`crate::privacy::ThrottleKey`]), in memory on each collector.
//!
//! After [`FAILURES`] failures within [`WINDOW`], the key is locked for [`FIRST_LOCK`], and each
//! further failure in the window doubles the lock, up to [`MAX_LOCK`]. While locked, attempts are
//! answered 429 with `Retry-After` and the password is not even checked, so guessing runs at
//! most a handful of tries per quarter of an hour per account and per address. A success clears
//! the account's count (not the address's: one right password must not reset an address that
//! tried many accounts). The state is bounded ([`MAX_KEYS`]): when full, keys with nothing
//! recent are forgotten first.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures within [`WINDOW`] before a key is locked.
pub const FAILURES: usize = 5;

/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// The first lock.
pub const FIRST_LOCK: Duration = Duration::from_secs(30);

/// The longest lock.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);

/// Most keys tracked at once.
pub const MAX_KEYS: usize = 100_000;

#[derive(Default)]
struct Entry {
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

/// Failed attempts per key.
pub struct Throttle<K> {
    entries: Mutex<HashMap<K, Entry>>,
}

impl<K: Hash + Eq + Clone> Default for Throttle<K> {
    fn default() -> Self {
        Throttle {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    /// `Err(wait)` while `key` is locked at `now`.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key).and_then(|e| e.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Counts a failure of `key` at `now`; returns the lock it causes, if any.
    pub fn fail(&self, key: &K, now: Instant) -> Option<Duration> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_KEYS && !entries.contains_key(key) {
            entries.retain(|_, e| {
                e.locked_until.is_some_and(|u| u > now)
                    || e.failures
                        .back()
                        .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
            if entries.len() >= MAX_KEYS {
                tracing::warn!("sign-in throttle full; a failure is not counted");
                return None;
            }
        }
        let entry = entries.entry(key.clone()).or_default();
        while entry
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            entry.failures.pop_front();
        }
        entry.failures.push_back(now);
        let n = entry.failures.len();
        if n < FAILURES {
            return None;
        }
        let doublings = u32::try_from(n - FAILURES).unwrap_or(u32::MAX).min(10);
        let lock = FIRST_LOCK.saturating_mul(1 << doublings).min(MAX_LOCK);
        entry.locked_until = Some(now + lock);
        Some(lock)
    }

    /// Forgets `key`'s failures (a successful sign-in).
    pub fn clear(&self, key: &K) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(key);
    }
}

/// Whole seconds for `Retry-After`, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_and_locks_double_up_to_a_quarter_hour() {
        let t: Throttle<&str> = Throttle::default();
        let start = Instant::now();
        for i in 0..4 {
            assert_eq!(t.fail(&"ada", start + Duration::from_secs(i)), None);
            assert!(t.check(&"ada", start + Duration::from_secs(i)).is_ok());
        }
        let at = start + Duration::from_secs(4);
        assert_eq!(t.fail(&"ada", at), Some(FIRST_LOCK));
        assert_eq!(t.check(&"ada", at), Err(FIRST_LOCK));
        assert!(t.check(&"bob", at).is_ok());
        // After the lock, the next failure doubles it.
        let later = at + FIRST_LOCK;
        assert!(t.check(&"ada", later).is_ok());
        assert_eq!(t.fail(&"ada", later), Some(FIRST_LOCK * 2));
        let mut now = later;
        let mut last = Duration::ZERO;
        for _ in 0..10 {
            now += Duration::from_secs(1);
            last = t.fail(&"ada", now).unwrap();
        }
        assert_eq!(last, MAX_LOCK);
        assert_eq!(retry_after_secs(t.check(&"ada", now).unwrap_err()), 900);
        // A success clears the count.
        t.clear(&"ada");
        assert!(t.check(&"ada", now).is_ok());
        assert_eq!(t.fail(&"ada", now), None);
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let t: Throttle<u8> = Throttle::default();
        let start = Instant::now();
        for i in 0..4 {
            t.fail(&1, start + Duration::from_secs(i));
        }
        // The fifth failure comes after the first four have aged out.
        assert_eq!(t.fail(&1, start + WINDOW + Duration::from_secs(10)), None);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
    }
}
