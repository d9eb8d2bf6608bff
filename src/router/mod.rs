//! The router's guards on the way to an upstream. So far: rate limits
//! ([`limits`]), token buckets per agent, role, tool and agent+tool,
//! checked before any credential is minted.

pub mod limits;

pub use limits::{Limits, RateLimited};
