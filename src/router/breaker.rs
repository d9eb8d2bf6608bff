//! Circuit breakers, one per upstream server that configures one
//! (`servers.<name>.circuit`).
//!
//! Closed, a breaker lets every call through and counts failures: time-outs,
//! lost connections and JSON-RPC errors (a tool's own `isError` result is
//! an answer, not a failure). After `consecutive_failures` in a row, or a
//! `failure_rate` over a window, it opens: calls are refused at once and
//! the server is not contacted. After `cooldown` one call (the probe) goes
//! through, half-open; its success closes the circuit, its failure opens it
//! for another cool-down.
//!
//! Each breaker has a lock of its own, held for a few comparisons and
//! never across an await. A catalog reload keeps the breakers of servers
//! whose settings it leaves unchanged. In memory, per replica.
//!
//! (Hand-written rather than `failsafe`: that crate lets every call through
//! while half-open, where one probe is what keeps a recovering server from
//! being flooded.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Guard;
use crate::config::CircuitConfig;

/// What a breaker says of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// For the `mcp_cp_circuit_state` gauge.
    pub fn as_gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
        }
    }
}

/// A call let through. Its breaker hears how it went from
/// [`Ticket::finish`]; a ticket dropped unfinished (the caller went away)
/// counts as [`Finished::NotSent`], so a probe is never lost.
pub struct Ticket {
    breaker: Arc<Breaker>,
    /// The one call let through a half-open circuit.
    probe: bool,
    finished: bool,
}

impl Ticket {
    pub fn finish(mut self, finished: Finished) {
        self.finished = true;
        self.breaker.finish(self.probe, finished);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.finished {
            self.breaker.finish(self.probe, Finished::NotSent);
        }
    }
}

/// How a call that was let through ended, for its breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Succeeded,
    Failed,
    /// It never reached the server (refused on the way).
    NotSent,
}

pub struct Breaker {
    settings: CircuitConfig,
    inner: Mutex<Inner>,
}

struct Inner {
    state: CircuitState,
    consecutive: u32,
    window_started: Instant,
    calls: u32,
    failures: u32,
    /// When an open circuit may let a probe through.
    retry_at: Instant,
    /// A probe is out (half-open).
    probing: bool,
}

impl Breaker {
    pub fn new(settings: CircuitConfig) -> Self {
        let now = Instant::now();
        Self {
            settings,
            inner: Mutex::new(Inner {
                state: CircuitState::Closed,
                consecutive: 0,
                window_started: now,
                calls: 0,
                failures: 0,
                retry_at: now,
                probing: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the counters half-updated in a way
        // that matters more than refusing every call would.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Let a call through, or refuse it while the circuit is open.
    pub fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let mut inner = self.lock();
        let probe = match inner.state {
            CircuitState::Closed => false,
            CircuitState::Open if Instant::now() >= inner.retry_at => {
                inner.state = CircuitState::HalfOpen;
                true
            }
            CircuitState::HalfOpen if !inner.probing => true,
            CircuitState::Open | CircuitState::HalfOpen => return None,
        };
        inner.probing |= probe;
        Some(Ticket {
            breaker: self.clone(),
            probe,
            finished: false,
        })
    }

    /// Hear how a call let through by [`Self::admit`] ended.
    fn finish(&self, probe: bool, finished: Finished) {
        let mut inner = self.lock();
        let now = Instant::now();
        if probe {
            inner.probing = false;
            match finished {
                Finished::Succeeded => inner.close(now),
                Finished::Failed => inner.open(now + self.settings.cooldown),
                // Another call may probe instead.
                Finished::NotSent => {}
            }
            return;
        }
        if finished == Finished::NotSent || inner.state != CircuitState::Closed {
            return;
        }
        if now.duration_since(inner.window_started) >= self.settings.window {
            inner.window_started = now;
            inner.calls = 0;
            inner.failures = 0;
        }
        inner.calls += 1;
        if finished == Finished::Succeeded {
            inner.consecutive = 0;
            return;
        }
        inner.consecutive += 1;
        inner.failures += 1;
        let too_many_in_a_row = inner.consecutive >= self.settings.consecutive_failures;
        let too_high_a_rate = self.settings.failure_rate.is_some_and(|rate| {
            inner.calls >= self.settings.min_calls
                && u64::from(inner.failures) * 100 >= u64::from(rate) * u64::from(inner.calls)
        });
        if too_many_in_a_row || too_high_a_rate {
            inner.open(now + self.settings.cooldown);
        }
    }

    pub fn state(&self) -> CircuitState {
        let inner = self.lock();
        match inner.state {
            CircuitState::Open if Instant::now() >= inner.retry_at => CircuitState::HalfOpen,
            state => state,
        }
    }

    /// How long until an open circuit lets a probe through.
    pub fn retry_in(&self) -> Duration {
        self.lock()
            .retry_at
            .saturating_duration_since(Instant::now())
    }
}

impl Inner {
    fn open(&mut self, retry_at: Instant) {
        self.state = CircuitState::Open;
        self.retry_at = retry_at;
    }

    fn close(&mut self, now: Instant) {
        self.state = CircuitState::Closed;
        self.consecutive = 0;
        self.window_started = now;
        self.calls = 0;
        self.failures = 0;
    }
}

impl Guard for Breaker {
    type Settings = CircuitConfig;

    fn new(settings: CircuitConfig) -> Self {
        Breaker::new(settings)
    }

    fn settings(&self) -> &CircuitConfig {
        &self.settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(consecutive_failures: u32, failure_rate: Option<u32>) -> CircuitConfig {
        CircuitConfig {
            consecutive_failures,
            failure_rate,
            window: Duration::from_secs(60),
            min_calls: 4,
            cooldown: Duration::from_secs(600),
        }
    }

    /// End the cool-down now, as if it had run its course: no test waits
    /// for a clock, and none races one.
    fn cool_down(breaker: &Breaker) {
        breaker.lock().retry_at = Instant::now();
    }

    fn call(breaker: &Arc<Breaker>, finished: Finished) -> bool {
        match breaker.admit() {
            Some(ticket) => {
                ticket.finish(finished);
                true
            }
            None => false,
        }
    }

    #[test]
    fn opens_after_failures_in_a_row_then_one_probe_closes_it() {
        let breaker = Arc::new(Breaker::new(settings(3, None)));
        assert!(call(&breaker, Finished::Failed));
        assert!(call(&breaker, Finished::Failed));
        assert!(
            call(&breaker, Finished::Succeeded),
            "a success resets the run"
        );
        for _ in 0..3 {
            assert!(call(&breaker, Finished::Failed));
        }
        assert_eq!(breaker.state(), CircuitState::Open);
        assert!(breaker.admit().is_none(), "open: refused");
        cool_down(&breaker);
        assert_eq!(breaker.state(), CircuitState::HalfOpen);
        let probe = breaker.admit().expect("one probe");
        assert!(breaker.admit().is_none(), "only one probe at a time");
        probe.finish(Finished::Succeeded);
        assert_eq!(breaker.state(), CircuitState::Closed);
        assert!(call(&breaker, Finished::Succeeded));
    }

    #[test]
    fn a_failed_probe_opens_it_again_and_an_abandoned_one_frees_the_slot() {
        let breaker = Arc::new(Breaker::new(settings(1, None)));
        assert!(call(&breaker, Finished::Failed));
        cool_down(&breaker);
        // The caller went away with the probe.
        drop(breaker.admit().unwrap());
        let probe = breaker.admit().expect("another probe may go");
        probe.finish(Finished::Failed);
        assert_eq!(breaker.state(), CircuitState::Open);
        assert!(breaker.admit().is_none());
        assert!(breaker.retry_in() > Duration::ZERO);
    }

    #[test]
    fn a_failure_rate_over_the_window_opens_it_once_enough_calls_were_made() {
        let breaker = Arc::new(Breaker::new(settings(100, Some(50))));
        // 1 of 3 failed: under `min_calls`, and under the rate.
        for finished in [Finished::Failed, Finished::Succeeded, Finished::Succeeded] {
            assert!(call(&breaker, finished));
        }
        assert_eq!(breaker.state(), CircuitState::Closed);
        assert!(call(&breaker, Finished::Failed)); // 2 of 4: 50%
        assert_eq!(breaker.state(), CircuitState::Open);
    }
}
