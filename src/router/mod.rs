//! The router: where a call goes and the guards on its way there.
//!
//! Where: weighted targets of one public name ([`split`]), a fan-out to
//! several servers and the merge of their answers ([`fan_out`]), tries
//! again for idempotent tools ([`retry`]).
//!
//! Guards: rate limits ([`limits`]), token buckets per agent, role, tool
//! and agent+tool, checked before any credential is minted; circuit
//! breakers per server ([`breaker`]); and each server's share of
//! concurrent calls ([`concurrency`]).

pub mod breaker;
pub mod concurrency;
pub mod fan_out;
pub mod limits;
pub mod retry;
pub mod split;

use std::sync::Arc;

pub use limits::{Limits, RateLimited};

/// The servers' circuit breakers, by server name.
pub type Breakers = Named<breaker::Breaker>;
/// The servers' concurrency gates, by server name.
pub type Gates = Named<concurrency::Gate>;

/// A guard (a breaker, a gate, a rate limit's buckets), built from its
/// settings.
pub trait Guard {
    type Settings: Clone + PartialEq;

    fn new(settings: Self::Settings) -> Self;
    fn settings(&self) -> &Self::Settings;
}

/// The guards of one catalog version, by name (a server's, or a `limits:`
/// key).
pub struct Named<G> {
    by_name: Vec<(Arc<str>, Arc<G>)>,
}

impl<G> Default for Named<G> {
    fn default() -> Self {
        Self {
            by_name: Vec::new(),
        }
    }
}

impl<G: Guard> Named<G> {
    /// A guard for each of `named`; those of `previous` with the same name
    /// and settings are kept, with their state (a reload that leaves a
    /// server's settings alone leaves its breaker open, its calls counted,
    /// a rate limit's buckets as drained as they were).
    pub fn compile<'a>(
        named: impl Iterator<Item = (&'a str, G::Settings)>,
        previous: Option<&Self>,
    ) -> Self {
        let by_name = named
            .map(|(name, settings)| {
                let kept = previous
                    .into_iter()
                    .flat_map(|p| &p.by_name)
                    .find(|(n, g)| **n == *name && *g.settings() == settings)
                    .map(|(_, guard)| guard.clone());
                let guard = kept.unwrap_or_else(|| Arc::new(G::new(settings)));
                (Arc::from(name), guard)
            })
            .collect();
        Self { by_name }
    }

    /// The guard named `name`, if there is one.
    pub fn of(&self, name: &str) -> Option<&Arc<G>> {
        (self.by_name.iter())
            .find(|(n, _)| **n == *name)
            .map(|(_, guard)| guard)
    }

    /// Every guard, with its name.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Arc<G>)> {
        self.by_name.iter().map(|(name, guard)| (name, guard))
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
