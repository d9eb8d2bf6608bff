//! Opening one MCP client session to an upstream server, over either transport,
//! and reading its tool list.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use rmcp::ClientServiceExt;
use rmcp::model::ProtocolVersion;
use rmcp::service::ClientLifecycleMode;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess, Transport};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::client::UpstreamClient;
use super::http_client::CredentialedClient;
use super::legacy_sse;
use super::offered::{self, Offered};
use super::ordered::Ordered;
use crate::catalog::{ServerSpec, TransportSpec};
use crate::config::UpstreamProtocol;

/// The command value that names this control-plane executable.
pub const SELF_COMMAND: &str = "$SELF";

/// Environment variables a stdio child inherits; everything else it gets
/// from the catalog, so the control plane's own secrets never leak into it.
const INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ"];

pub type Session = RunningService<RoleClient, UpstreamClient>;

/// Why a connection attempt failed. The `Display` text is for operators'
/// logs; [`ConnectError::kind`] is the only part shown outside (readyz).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot start the server process: {0}")]
    Spawn(std::io::Error),
    #[error("invalid static header {0}")]
    Header(String),
    #[error("cannot open the event stream: {0}")]
    Sse(legacy_sse::SseError),
    #[error("MCP handshake failed: {0}")]
    Handshake(String),
    #[error("listing tools, prompts or resources failed: {0}")]
    List(String),
    #[error("listing refused: {0}")]
    ListTooLarge(String),
    #[error("timed out")]
    Timeout,
}

impl ConnectError {
    /// A fixed, topology-free label for this failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Spawn(_) => "spawn_failed",
            Self::Header(_) => "invalid_configuration",
            Self::Sse(_) => "connect_failed",
            Self::Handshake(_) => "handshake_failed",
            Self::List(_) => "list_failed",
            Self::ListTooLarge(_) => "listing_too_large",
            Self::Timeout => "connect_timeout",
        }
    }
}

/// Connect, run the MCP handshake, and list what the server offers.
pub async fn establish(
    spec: &ServerSpec,
    client: UpstreamClient,
    http: CredentialedClient,
) -> Result<(Session, Offered), ConnectError> {
    let attempt = async {
        let session = negotiate(spec, client, http).await?;
        let offered =
            (offered::list(session.peer(), spec.max_tools).await).map_err(|e| match e {
                offered::ListError::TooLarge(problem) => ConnectError::ListTooLarge(problem),
                offered::ListError::Service(error) => ConnectError::List(error.to_string()),
            })?;
        Ok((session, offered))
    };
    tokio::time::timeout(spec.timeout, attempt)
        .await
        .unwrap_or(Err(ConnectError::Timeout))
}

/// Open a session in the first era of the server's `protocol` that it
/// accepts.
async fn negotiate(
    spec: &ServerSpec,
    client: UpstreamClient,
    http: CredentialedClient,
) -> Result<Session, ConnectError> {
    let eras = lifecycles(spec.protocol, &spec.transport);
    let mut refused = None;
    for era in eras {
        match open_session(spec, client.clone(), http.clone(), *era).await {
            Ok(session) => {
                tracing::debug!(server = %spec.name, ?era, "upstream session opened");
                return Ok(session);
            }
            // A refused handshake may be the other era's server; anything
            // else (no process, no connection) is no better the second time.
            Err(ConnectError::Handshake(problem)) => {
                tracing::debug!(server = %spec.name, ?era, %problem, "upstream refused this handshake");
                refused = Some(ConnectError::Handshake(problem));
            }
            Err(other) => return Err(other),
        }
    }
    Err(refused.expect("every protocol setting names at least one era"))
}

/// Re-log a stdio child's stderr, line by line, under its server's name, so
/// its output keeps our log format.
async fn forward_stderr(server: Arc<str>, stderr: tokio::process::ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "upstream_stderr", server = %server, "{line}");
    }
}

async fn open_session(
    spec: &ServerSpec,
    client: UpstreamClient,
    http: CredentialedClient,
    era: Era,
) -> Result<Session, ConnectError> {
    match &spec.transport {
        TransportSpec::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let program = if command == SELF_COMMAND {
                std::env::current_exe().map_err(ConnectError::Spawn)?
            } else {
                command.into()
            };
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(args).current_dir(cwd).env_clear();
            for key in INHERITED_ENV {
                if let Some(value) = std::env::var_os(key) {
                    cmd.env(key, value);
                }
            }
            let credentials = http.credentials();
            cmd.envs(credentials.child_env());
            cmd.envs(env.iter().map(|(k, v)| (k, v)));
            let (transport, stderr) = TokioChildProcess::builder(cmd)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(ConnectError::Spawn)?;
            if let Some(stderr) = stderr {
                tokio::spawn(forward_stderr(spec.name.clone(), stderr));
            }
            serve(client, transport, era).await
        }
        TransportSpec::Http { url, headers } => {
            let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                .custom_headers(static_headers(headers)?);
            let transport = StreamableHttpClientTransport::with_client(http, config);
            serve(client, transport, era).await
        }
        TransportSpec::Sse { url, headers } => {
            let transport = legacy_sse::connect(url, static_headers(headers)?, http)
                .await
                .map_err(ConnectError::Sse)?;
            serve(client, transport, era).await
        }
    }
}

/// Run `client`'s session over `transport`, opened in `era`, with the
/// transport counting what calls wait for (see [`Ordered`]).
async fn serve<T>(client: UpstreamClient, transport: T, era: Era) -> Result<Session, ConnectError>
where
    T: Transport<RoleClient> + 'static,
{
    let transport = Ordered::new(transport, client.delivered.clone());
    (client.serve_with_lifecycle(transport, era.mode()).await)
        .map_err(|e| ConnectError::Handshake(e.to_string()))
}

/// The catalog's static headers for an HTTP server.
fn static_headers(
    headers: &[(String, String)],
) -> Result<HashMap<HeaderName, HeaderValue>, ConnectError> {
    let mut custom = HashMap::new();
    for (name, value) in headers {
        let header =
            HeaderName::try_from(name.as_str()).map_err(|_| ConnectError::Header(name.clone()))?;
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|_| ConnectError::Header(name.clone()))?;
        custom.insert(header, value);
    }
    Ok(custom)
}

/// How to open a session with a server configured for `protocol`. Each
/// way speaks one era only: `server/discover` and per-request `_meta`
/// (2026-07-28), or the `initialize` handshake claiming an initialize-era
/// revision.
///
/// `auto` probes `server/discover` first, as the specification advises, and
/// if the server refuses it opens a new session with `initialize`. What the
/// two eras carry differently is bridged elsewhere: input a server asks
/// for (`input_required`, or requests during a call), its list changes and
/// resource updates (a listen stream, or the session), its log messages
/// (asked per request, or set per session).
///
/// The legacy SSE transport carries only the `initialize` era.
fn lifecycles(protocol: UpstreamProtocol, transport: &TransportSpec) -> &'static [Era] {
    match protocol {
        _ if matches!(transport, TransportSpec::Sse { .. }) => &[Era::Initialize],
        UpstreamProtocol::Auto => &[Era::Discover, Era::Initialize],
        UpstreamProtocol::V2026_07_28 => &[Era::Discover],
        _ => &[Era::Initialize],
    }
}

/// The two ways to open a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Era {
    /// `initialize`, claiming the client's `initialize_version`.
    Initialize,
    /// `server/discover`, then 2026-07-28 with per-request `_meta`.
    Discover,
}

impl Era {
    fn mode(self) -> ClientLifecycleMode {
        match self {
            Self::Initialize => ClientLifecycleMode::Initialize,
            Self::Discover => ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        }
    }
}

/// The revision an `initialize` handshake with a server configured for
/// `protocol` claims.
pub fn initialize_version(protocol: UpstreamProtocol) -> ProtocolVersion {
    match protocol {
        UpstreamProtocol::V2025_06_18 => ProtocolVersion::V_2025_06_18,
        UpstreamProtocol::V2025_03_26 => ProtocolVersion::V_2025_03_26,
        UpstreamProtocol::V2024_11_05 => ProtocolVersion::V_2024_11_05,
        _ => ProtocolVersion::LATEST_WITH_INITIALIZE,
    }
}
