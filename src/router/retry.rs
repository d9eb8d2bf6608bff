//! When an idempotent tool's failed call is tried again: after a jittered,
//! exponentially growing wait, at most a set number of times, and never
//! when the wait would end past the call's deadline.

use std::time::{Duration, Instant};

use crate::config::RetryConfig;

/// A tool's retry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    attempts: u32,
    base: Duration,
    max: Duration,
}

impl From<RetryConfig> for Backoff {
    fn from(config: RetryConfig) -> Self {
        Self {
            attempts: config.attempts,
            base: config.backoff,
            max: config.max_backoff,
        }
    }
}

impl Backoff {
    /// Attempts in all, the first included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How long to wait before trying again after attempt `attempt`
    /// (1 for the first) failed, if another attempt may be made at all:
    /// not after the last, and not if the wait ends past `deadline`.
    pub fn next(&self, attempt: u32, deadline: Instant) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let wait = self.wait(attempt);
        (Instant::now() + wait < deadline).then_some(wait)
    }

    /// The wait after attempt `attempt`: `base * 2^(attempt - 1)` up to
    /// `max`, of which a random half ("equal jitter"), so that callers
    /// failing together do not all come back together.
    fn wait(&self, attempt: u32) -> Duration {
        let doubled = self.base.saturating_mul(1 << (attempt - 1).min(20));
        let ceiling = doubled.min(self.max);
        let half = ceiling / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(attempts: u32) -> Backoff {
        Backoff::from(RetryConfig {
            attempts,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        })
    }

    #[test]
    fn waits_grow_with_jitter_up_to_the_ceiling() {
        let far = Instant::now() + Duration::from_secs(60);
        let backoff = backoff(10);
        for (attempt, ceiling) in [(1, 100), (2, 200), (3, 300), (6, 300)] {
            let wait = backoff.next(attempt, far).unwrap();
            let ceiling = Duration::from_millis(ceiling);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{wait:?} after {attempt}"
            );
        }
    }

    #[test]
    fn no_attempt_beyond_the_count_or_the_deadline() {
        let far = Instant::now() + Duration::from_secs(60);
        assert!(backoff(3).next(2, far).is_some());
        assert!(backoff(3).next(3, far).is_none());
        assert!(backoff(1).next(1, far).is_none());
        let near = Instant::now() + Duration::from_millis(10);
        assert!(backoff(3).next(1, near).is_none());
    }
}
