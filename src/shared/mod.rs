//! What the replicas of one control plane share. So far, through Redis
//! ([`redis`]): the rate limits' buckets, so a limit holds across every
//! replica; and the servers' definitions (`upstream::definitions`), so a
//! replica lists tools before its own handshakes are done. When Redis cannot answer in time, each replica falls back to
//! its own state and says so (`/readyz`, `mcp_cp_redis_up`), and goes
//! back to the shared state by itself once Redis answers again.

pub mod events;
pub mod redis;

pub use self::events::Event;
pub use self::redis::Shared;
