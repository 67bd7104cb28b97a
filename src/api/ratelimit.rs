//! Per-key rate limits (`[api] requests_per_hour`, `burst`), with `governor`'s GCRA: a key may
//! make `burst` requests at once, and then one more every `3600 / requests_per_hour` seconds,
//! so over any hour at most `requests_per_hour + burst`. Plausible counts 600 requests in a
//! fixed hourly window instead, which lets all 600 arrive in the same second; a steady rate with
//! a small burst keeps one key from taking the database for itself.
//!
//! Only keys that passed authentication are counted: the state holds one entry per valid key,
//! so its size is bounded by the number of keys.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::config::ApiConfig;

/// The rate limits of every key.
pub struct Limiter<C: Clock = DefaultClock> {
    limiter: RateLimiter<String, DashMapStateStore<String>, C, NoOpMiddleware<C::Instant>>,
    /// For the message: the configured hourly rate and burst.
    per_hour: u32,
    burst: u32,
}

/// A refused request: when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Whole seconds until the next request of this key is allowed (at least 1), for
    /// `Retry-After`.
    pub retry_after_secs: u64,
}

impl Limiter<DefaultClock> {
    /// The limits of `[api]` on the system clock.
    pub fn new(config: &ApiConfig) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock> Limiter<C> {
    /// The limits of `[api]` on `clock` (tests drive a fake one).
    pub fn with_clock(config: &ApiConfig, clock: C) -> Self {
        let per_hour = config.requests_per_hour.max(1);
        let burst = config.burst.max(1);
        let period = Duration::from_secs(3600) / per_hour;
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Limiter {
            limiter: RateLimiter::dashmap_with_clock(quota, clock),
            per_hour,
            burst,
        }
    }

    /// Counts one request of key `id`; refused when the key has used up its allowance.
    pub fn check(&self, id: &str) -> Result<(), Limited> {
        // Keys are few; an allocation per request is nothing beside the query itself.
        self.limiter
            .check_key(&id.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                Limited {
                    retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                }
                .at_least_one()
            })
    }

    /// Plausible's words for a refusal, with this collector's numbers.
    pub fn message(&self) -> String {
        format!(
            "Too many API requests. Your API key is limited to {} requests per hour \
             (at most {} at once).",
            self.per_hour, self.burst
        )
    }
}

impl Limited {
    fn at_least_one(self) -> Self {
        Limited {
            retry_after_secs: self.retry_after_secs.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn limiter(per_hour: u32, burst: u32) -> (Limiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let config = ApiConfig {
            requests_per_hour: per_hour,
            burst,
            ..ApiConfig::default()
        };
        (Limiter::with_clock(&config, clock.clone()), clock)
    }

    #[test]
    fn a_burst_then_the_hourly_rate() {
        // 600 an hour: one every 6 s, 3 at once.
        let (l, clock) = limiter(600, 3);
        for _ in 0..3 {
            assert_eq!(l.check("a"), Ok(()));
        }
        assert_eq!(
            l.check("a"),
            Err(Limited {
                retry_after_secs: 6
            })
        );
        clock.advance(Duration::from_millis(5500));
        assert_eq!(
            l.check("a"),
            Err(Limited {
                retry_after_secs: 1
            })
        );
        clock.advance(Duration::from_millis(500));
        assert_eq!(l.check("a"), Ok(()));
        assert!(l.check("a").is_err());
        // After a quiet minute the whole burst is back, and no more.
        clock.advance(Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(l.check("a"), Ok(()));
        }
        assert!(l.check("a").is_err());
    }

    #[test]
    fn keys_are_limited_separately() {
        let (l, _) = limiter(60, 1);
        assert_eq!(l.check("a"), Ok(()));
        assert_eq!(
            l.check("a"),
            Err(Limited {
                retry_after_secs: 60
            })
        );
        assert_eq!(l.check("b"), Ok(()));
    }

    #[test]
    fn over_an_hour_at_most_the_rate_plus_the_burst() {
        let (l, clock) = limiter(600, 60);
        let mut allowed = 0;
        // A request every 100 ms for an hour.
        for _ in 0..36_000 {
            if l.check("a").is_ok() {
                allowed += 1;
            }
            clock.advance(Duration::from_millis(100));
        }
        assert!((600..=660).contains(&allowed), "{allowed}");
    }

    #[test]
    fn the_message_names_the_limits() {
        let (l, _) = limiter(600, 60);
        assert_eq!(
            l.message(),
            "Too many API requests. Your API key is limited to 600 requests per hour (at most 60 at once)."
        );
    }
}
