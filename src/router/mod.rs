//! The router's guards on the way to an upstream. So far: rate limits
//! ([`limits`]), token buckets per agent, role, tool and agent+tool,
//! checked before any credential is minted; and circuit breakers per
//! server ([`breaker`]); and each server's share of concurrent calls
//! ([`concurrency`]).

pub mod breaker;
pub mod concurrency;
pub mod limits;

use std::sync::Arc;

pub use limits::{Limits, RateLimited};

/// The servers' circuit breakers, by name.
pub type Breakers = PerServer<breaker::Breaker>;
/// The servers' concurrency gates, by name.
pub type Gates = PerServer<concurrency::Gate>;

/// A guard kept per server, built from its settings.
pub trait Guard {
    type Settings: Copy + PartialEq;

    fn new(settings: Self::Settings) -> Self;
    fn settings(&self) -> &Self::Settings;
}

/// One guard per server of a catalog version, by server name.
pub struct PerServer<G> {
    by_server: Vec<(Arc<str>, Arc<G>)>,
}

impl<G> Default for PerServer<G> {
    fn default() -> Self {
        Self {
            by_server: Vec::new(),
        }
    }
}

impl<G: Guard> PerServer<G> {
    /// A guard for each of `servers`; those of `previous` with the same
    /// settings are kept, with their state (a reload that leaves a
    /// server's settings alone leaves its breaker open, its calls counted).
    pub fn compile<'a>(
        servers: impl Iterator<Item = (&'a str, G::Settings)>,
        previous: Option<&Self>,
    ) -> Self {
        let by_server = servers
            .map(|(name, settings)| {
                let kept = previous
                    .into_iter()
                    .flat_map(|p| &p.by_server)
                    .find(|(n, g)| **n == *name && *g.settings() == settings)
                    .map(|(_, guard)| guard.clone());
                let guard = kept.unwrap_or_else(|| Arc::new(G::new(settings)));
                (Arc::from(name), guard)
            })
            .collect();
        Self { by_server }
    }

    /// The guard of the server named `server`, if it has one.
    pub fn of(&self, server: &str) -> Option<&Arc<G>> {
        (self.by_server.iter())
            .find(|(name, _)| **name == *server)
            .map(|(_, guard)| guard)
    }

    /// Every guard, by server name.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Arc<G>)> {
        self.by_server.iter().map(|(name, guard)| (name, guard))
    }
}
