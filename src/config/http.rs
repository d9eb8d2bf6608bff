//! The `http` section: limits and time-outs of the HTTP front doors.

use std::time::Duration;

use serde::Deserialize;

use super::DEFAULT_MAX_BODY_BYTES;

/// Settings of the HTTP front doors.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Largest accepted request body in bytes; larger bodies get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// `Host` values `/mcp` accepts (a name, or `name:port`), against DNS
    /// rebinding. Default: the loopback names. An empty list turns the check
    /// off (only behind a proxy that checks `Host` itself).
    #[serde(default = "default_allowed_hosts")]
    pub allowed_hosts: Vec<String>,
    /// Browser origins `/mcp` accepts (`https://app.example.com:443`,
    /// `http://localhost:*`). A request carrying any other `Origin` is refused;
    /// requests without `Origin` (agents, SDKs) are not affected.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Whether `/mcp` keeps sessions (`Mcp-Session-Id`) for the
    /// initialize-based protocol revisions. `false` serves every request
    /// statelessly, so replicas need no sticky sessions. The 2026-07-28
    /// revision is always stateless.
    #[serde(default = "default_true")]
    pub mcp_sessions: bool,
    /// Longest a client may take to send a request's headers, counted from
    /// the connection's start or from the end of the previous response.
    #[serde(default = "default_header_timeout", with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Longest a client may take to send a request's body.
    #[serde(default = "default_body_timeout", with = "humantime_serde")]
    pub body_timeout: Duration,
    /// A connection on which no byte moves either way for this long is
    /// closed (MCP streams are kept alive by the server's pings).
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most client connections open at once; further ones wait in the
    /// kernel's accept queue until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long a shutdown (SIGTERM) waits for requests in flight before
    /// the remaining connections are closed.
    #[serde(default = "default_shutdown_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Most open `/mcp` sessions (initialize-based revisions), in total.
    #[serde(default = "default_max_sessions")]
    pub mcp_max_sessions: usize,
    /// Most open `/mcp` sessions of one agent.
    #[serde(default = "default_max_sessions_per_agent")]
    pub mcp_max_sessions_per_agent: usize,
    /// A session nobody used for this long is closed.
    #[serde(default = "default_session_idle", with = "humantime_serde")]
    pub mcp_session_idle: Duration,
}

fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_body_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_max_connections() -> usize {
    1024
}

fn default_shutdown_grace() -> Duration {
    Duration::from_secs(15)
}

fn default_max_sessions() -> usize {
    1000
}

fn default_max_sessions_per_agent() -> usize {
    100
}

fn default_session_idle() -> Duration {
    Duration::from_secs(300)
}

fn default_allowed_hosts() -> Vec<String> {
    ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec()
}

fn default_true() -> bool {
    true
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            allowed_hosts: default_allowed_hosts(),
            allowed_origins: Vec::new(),
            mcp_sessions: true,
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            shutdown_grace: default_shutdown_grace(),
            mcp_max_sessions: default_max_sessions(),
            mcp_max_sessions_per_agent: default_max_sessions_per_agent(),
            mcp_session_idle: default_session_idle(),
        }
    }
}
