//! What the replicas of one control plane share, through Redis
//! ([`redis`]): the rate limits' buckets, so a limit holds across every
//! replica; the servers' definitions (`upstream::definitions`), so a
//! replica lists tools before its own handshakes are done; the MCP
//! session records (`api::mcp::session_records`); and, over pub/sub
//! ([`events`]), what one replica hears that the others must act on.
//! When Redis cannot answer in time, each replica falls back to its own
//! state and says so (`/readyz`, `mcp_cp_redis_up`), and goes back to the
//! shared state by itself once Redis answers again.

pub mod events;
pub mod redis;

pub use self::events::Event;
pub use self::redis::Shared;
