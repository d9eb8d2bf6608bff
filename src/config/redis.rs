//! `redis:`: what the replicas of one control plane share, through Redis:
//! the rate limits' buckets, the servers' definitions, the MCP session
//! records and the events between replicas (see `shared`).

use std::time::Duration;

use serde::Deserialize;

/// The `redis` section. Absent: every replica keeps its own state.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://127.0.0.1:6379/3` (`rediss://` for TLS), or
    /// `{env: VAR}` naming an environment variable that holds it.
    pub url: RedisUrl,
    /// Prefixed to every key, so deployments can share one database.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Longest one command may take before the replica falls back to its
    /// own state for that call. Default `50ms`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// Where the Redis URL comes from.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum RedisUrl {
    Plain(String),
    Env { env: String },
}

impl RedisUrl {
    /// The URL, or where it was looked for in vain (never its value).
    pub fn resolve(&self) -> Result<String, String> {
        match self {
            Self::Plain(url) => Ok(url.clone()),
            Self::Env { env } => {
                std::env::var(env).map_err(|_| format!("environment variable `{env}` is not set"))
            }
        }
    }
}

fn default_key_prefix() -> String {
    "mcp-control-plane:".into()
}

fn default_timeout() -> Duration {
    Duration::from_millis(50)
}
