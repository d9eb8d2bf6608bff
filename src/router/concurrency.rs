//! Concurrency limits per upstream server (`servers.<name>.concurrency`):
//! at most `max` calls at the server at once, at most `queue` more waiting
//! for one of them to finish, for no longer than the server's timeout.
//! Beyond that a call is refused at once (503 `upstream_busy`): a slow
//! server gets a bounded share of the control plane, never an unbounded
//! pile, and calls to other servers never wait behind it.
//!
//! A catalog reload keeps the gate of a server whose settings it leaves
//! unchanged. In memory, per replica.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Guard;
use crate::config::ConcurrencyConfig;

/// Why a call got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// The server has as many calls at it and waiting as it may.
    Full,
    /// No slot came free within the wait the call could afford.
    WaitedOut,
}

pub struct Gate {
    settings: ConcurrencyConfig,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// One call's slot at its server, given back when dropped.
pub type Slot = OwnedSemaphorePermit;

impl Gate {
    pub fn new(settings: ConcurrencyConfig) -> Self {
        Self {
            settings,
            slots: Arc::new(Semaphore::new(settings.max)),
            waiting: AtomicUsize::new(0),
        }
    }

    /// A slot at once, or after waiting in the queue for at most `wait`.
    pub async fn enter(&self, wait: Duration) -> Result<Slot, Busy> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.settings.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy::Full);
        }
        let waited = tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match waited {
            Ok(Ok(slot)) => Ok(slot),
            _ => Err(Busy::WaitedOut),
        }
    }

    /// Calls at the server now.
    pub fn in_flight(&self) -> usize {
        self.settings.max - self.slots.available_permits()
    }

    /// Calls waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

impl Guard for Gate {
    type Settings = ConcurrencyConfig;

    fn new(settings: ConcurrencyConfig) -> Self {
        Gate::new(settings)
    }

    fn settings(&self) -> &ConcurrencyConfig {
        &self.settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_the_slots_and_the_queue_a_call_is_refused_at_once() {
        let gate = Arc::new(Gate::new(ConcurrencyConfig { max: 1, queue: 1 }));
        let first = gate.enter(Duration::from_secs(5)).await.unwrap();
        assert_eq!(gate.in_flight(), 1);
        let waiting = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter(Duration::from_secs(5)).await.is_ok() })
        };
        while gate.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            gate.enter(Duration::from_secs(5)).await.err(),
            Some(Busy::Full)
        );
        drop(first);
        assert!(waiting.await.unwrap(), "the queued call gets the slot");
        assert_eq!(gate.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_queued_call_waits_no_longer_than_it_may() {
        let gate = Gate::new(ConcurrencyConfig { max: 1, queue: 4 });
        let _held = gate.enter(Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            gate.enter(Duration::from_millis(20)).await.err(),
            Some(Busy::WaitedOut)
        );
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0);
    }
}
