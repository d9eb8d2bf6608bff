//! The router's guards on the way to an upstream. So far: rate limits
//! ([`limits`]), token buckets per agent, role, tool and agent+tool,
//! checked before any credential is minted; and circuit breakers per
//! server ([`breaker`]); and each server's share of concurrent calls
//! ([`concurrency`]).

pub mod breaker;
pub mod concurrency;
pub mod limits;

pub use breaker::Breakers;
pub use concurrency::Gates;
pub use limits::{Limits, RateLimited};
