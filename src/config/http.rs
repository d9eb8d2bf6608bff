//! The `http` section: limits and time-outs of the HTTP front doors.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::DEFAULT_MAX_BODY_BYTES;

/// Settings of the HTTP front doors.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Where the operators' surface listens (`/metrics`, the detailed
    /// `/readyz`, the console, `/admin/*`): never on the agents' address,
    /// so an agent cannot read what discovery hides from it. Default: a
    /// free loopback port (printed at start), so two instances on one
    /// machine never collide; `--admin-listen` overrides it.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// The origin browsers use for the admin listener
    /// (`https://cp-admin.example.com`), against which the console checks a
    /// form's `Origin`. Default: the loopback names at the admin port.
    #[serde(default)]
    pub admin_origin: Option<String>,
    /// Most connections open at once on the admin listener (its own cap, so
    /// a crowd on the agents' address never keeps operators out).
    #[serde(default = "default_admin_max_connections")]
    pub admin_max_connections: usize,
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
    /// Most connections open at once from one client address; more are
    /// closed at once, so one client cannot take every place.
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
    /// Most requests (HTTP/2 streams) open at once on one connection.
    #[serde(default = "default_max_streams_per_connection")]
    pub max_streams_per_connection: u32,
    /// Most open MCP streams of one agent: `GET /mcp` session streams and
    /// `subscriptions/listen` streams, each.
    #[serde(default = "default_max_sessions_per_agent")]
    pub mcp_max_streams_per_agent: usize,
    /// Items per page of an MCP `*/list` answer. Large by default: some
    /// clients ignore `nextCursor` and would silently lose every item past
    /// the first page.
    #[serde(default = "default_mcp_page_size")]
    pub mcp_page_size: usize,
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

fn default_max_connections_per_client() -> usize {
    256
}

fn default_max_streams_per_connection() -> u32 {
    100
}

fn default_admin_max_connections() -> usize {
    64
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

/// The most items one `*/list` page may hold (`http.mcp_page_size`).
pub const MAX_MCP_PAGE_SIZE: usize = 10_000;

fn default_mcp_page_size() -> usize {
    1000
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
            admin_listen: None,
            admin_origin: None,
            admin_max_connections: default_admin_max_connections(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            allowed_hosts: default_allowed_hosts(),
            allowed_origins: Vec::new(),
            mcp_sessions: true,
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            max_connections_per_client: default_max_connections_per_client(),
            max_streams_per_connection: default_max_streams_per_connection(),
            mcp_max_streams_per_agent: default_max_sessions_per_agent(),
            mcp_page_size: default_mcp_page_size(),
            shutdown_grace: default_shutdown_grace(),
            mcp_max_sessions: default_max_sessions(),
            mcp_max_sessions_per_agent: default_max_sessions_per_agent(),
            mcp_session_idle: default_session_idle(),
        }
    }
}

impl HttpSettings {
    /// The origins the console accepts a state-changing form from: the
    /// configured `admin_origin`, or else the loopback names (and the bound
    /// address itself) at the admin listener's port. Never the request's
    /// own `Host`, which the sender chooses.
    pub fn admin_origins(&self, bound: SocketAddr) -> Vec<String> {
        if let Some(origin) = self.admin_origin.as_deref().and_then(parse_origin) {
            return vec![origin];
        }
        let port = bound.port();
        let mut origins = vec![
            format!("http://localhost:{port}"),
            format!("http://127.0.0.1:{port}"),
            format!("http://[::1]:{port}"),
        ];
        if !bound.ip().is_unspecified() && !bound.ip().is_loopback() {
            origins.push(format!("http://{bound}"));
        }
        origins
    }
}

/// `text` as a browser serializes an origin (`https://host[:port]`, the
/// scheme's default port left out), if it is one: `http` or `https`, a
/// host, and nothing after but an optional `/`.
pub fn parse_origin(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && !text.trim_end_matches('/').ends_with('?');
    plain.then(|| url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_a_scheme_a_host_and_a_port_only() {
        assert_eq!(
            parse_origin("https://cp.example.com:443/").as_deref(),
            Some("https://cp.example.com")
        );
        assert_eq!(
            parse_origin("http://cp.example.com:9090").as_deref(),
            Some("http://cp.example.com:9090")
        );
        for bad in [
            "cp.example.com",
            "ftp://cp.example.com",
            "https://cp.example.com/ui",
            "https://user@cp.example.com",
            "https://cp.example.com/?a",
        ] {
            assert_eq!(parse_origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_console_accepts_the_configured_origin_only() {
        let bound: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let default = HttpSettings::default().admin_origins(bound);
        assert!(default.contains(&"http://localhost:9001".to_owned()));
        assert!(!default.iter().any(|o| o.contains("8080")));
        let configured = HttpSettings {
            admin_origin: Some("https://ops.example.com/".into()),
            ..HttpSettings::default()
        };
        assert_eq!(configured.admin_origins(bound), ["https://ops.example.com"]);
    }
}
