//! `servers.<name>.circuit` and `servers.<name>.concurrency`: when to stop
//! calling a failing server for a while (see `router::breaker`), and how
//! many calls a server gets at once (see `router::concurrency`).

use std::time::Duration;

use serde::Deserialize;

/// A server's circuit breaker. Absent: none (every call goes through).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CircuitConfig {
    /// Open after this many failed calls in a row. Default 5.
    #[serde(default = "default_consecutive_failures")]
    pub consecutive_failures: u32,
    /// Also open when at least this percentage (1-100) of the calls in a
    /// `window` failed, once `min_calls` were made in it. Default: off.
    pub failure_rate: Option<u32>,
    /// The window `failure_rate` is measured over. Default `30s`.
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
    /// Fewest calls in a window before `failure_rate` may open it. Default 10.
    #[serde(default = "default_min_calls")]
    pub min_calls: u32,
    /// How long an open circuit refuses before one probe call may try the
    /// server again. Default `10s`.
    #[serde(default = "default_cooldown", with = "humantime_serde")]
    pub cooldown: Duration,
}

/// A server's share of calls: at most `max` at once, `queue` more waiting.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyConfig {
    /// Most calls at the server at once. Default 128.
    #[serde(default = "default_max_concurrent")]
    pub max: usize,
    /// Most calls waiting for a slot (each for at most the server's
    /// timeout); beyond, calls are refused at once. Default 256.
    #[serde(default = "default_queue")]
    pub queue: usize,
}

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        Self {
            max: default_max_concurrent(),
            queue: default_queue(),
        }
    }
}

/// Semaphores count permits in `usize` but cap them well below it.
const MAX_CONCURRENT: usize = 1 << 20;

impl ConcurrencyConfig {
    /// What is wrong with these settings, if anything: (field, problem).
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut problems = Vec::new();
        if !(1..=MAX_CONCURRENT).contains(&self.max) {
            problems.push(("max", "must be from 1 to 1048576"));
        }
        if self.queue > MAX_CONCURRENT {
            problems.push(("queue", "must be at most 1048576"));
        }
        problems
    }
}

fn default_max_concurrent() -> usize {
    128
}

fn default_queue() -> usize {
    256
}

fn default_consecutive_failures() -> u32 {
    5
}

fn default_window() -> Duration {
    Duration::from_secs(30)
}

fn default_min_calls() -> u32 {
    10
}

fn default_cooldown() -> Duration {
    Duration::from_secs(10)
}

impl CircuitConfig {
    /// What is wrong with these settings, if anything: (field, problem).
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut problems = Vec::new();
        if self.consecutive_failures == 0 {
            problems.push(("consecutive_failures", "must be at least 1"));
        }
        if self
            .failure_rate
            .is_some_and(|rate| !(1..=100).contains(&rate))
        {
            problems.push(("failure_rate", "must be a percentage from 1 to 100"));
        }
        if self.window.is_zero() {
            problems.push(("window", "must be longer than zero"));
        }
        if self.min_calls == 0 {
            problems.push(("min_calls", "must be at least 1"));
        }
        if self.cooldown.is_zero() {
            problems.push(("cooldown", "must be longer than zero"));
        }
        problems
    }
}
