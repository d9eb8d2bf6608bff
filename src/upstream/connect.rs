//! Opening one MCP client session to an upstream server, over either transport,
//! and reading its tool list.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use rmcp::ServiceExt;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::client::UpstreamClient;
use super::http_client::CredentialedClient;
use super::offered::{self, Offered};
use crate::catalog::{ServerSpec, TransportSpec};

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
    #[error("MCP handshake failed: {0}")]
    Handshake(String),
    #[error("listing tools, prompts or resources failed: {0}")]
    List(String),
    #[error("timed out")]
    Timeout,
}

impl ConnectError {
    /// A fixed, topology-free label for this failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Spawn(_) => "spawn_failed",
            Self::Header(_) => "invalid_configuration",
            Self::Handshake(_) => "handshake_failed",
            Self::List(_) => "list_failed",
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
        let session = open_session(spec, client, http).await?;
        let offered = offered::list(session.peer())
            .await
            .map_err(|e| ConnectError::List(e.to_string()))?;
        Ok((session, offered))
    };
    tokio::time::timeout(spec.timeout, attempt)
        .await
        .unwrap_or(Err(ConnectError::Timeout))
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
) -> Result<Session, ConnectError> {
    let handshake =
        |e: rmcp::service::ClientInitializeError| ConnectError::Handshake(e.to_string());
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
            client.serve(transport).await.map_err(handshake)
        }
        TransportSpec::Http { url, headers } => {
            let mut custom = HashMap::new();
            for (name, value) in headers {
                let header = HeaderName::try_from(name.as_str())
                    .map_err(|_| ConnectError::Header(name.clone()))?;
                let value = HeaderValue::try_from(value.as_str())
                    .map_err(|_| ConnectError::Header(name.clone()))?;
                custom.insert(header, value);
            }
            let config =
                StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(custom);
            let transport = StreamableHttpClientTransport::with_client(http, config);
            client.serve(transport).await.map_err(handshake)
        }
    }
}
