//! What the replicas of one control plane share. So far, through Redis
//! ([`redis`]): the rate limits' buckets, so a limit holds across every
//! replica. When Redis cannot answer in time, each replica falls back to
//! its own state and says so (`/readyz`, `mcp_cp_redis_up`), and goes
//! back to the shared state by itself once Redis answers again.

pub mod redis;

pub use self::redis::Shared;
