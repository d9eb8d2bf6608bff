//! `connect`: a bridge for MCP clients that cannot authenticate themselves.
//! By default it relays JSON-RPC messages unchanged between this process's
//! stdin/stdout and the control plane's `/mcp`, adding the bearer token, so a
//! client that only launches local servers gets exactly what an HTTP client
//! would. With `--listen` it serves a local HTTP endpoint instead
//! ([`super::local_proxy`]).

use anyhow::{Context, bail};
use clap::Args;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{IntoTransport, StreamableHttpClientTransport, Transport};
use rmcp::{RoleClient, RoleServer};

/// Bridge an MCP client that cannot authenticate to a control plane's `/mcp`.
///
/// Relays the client's stdio (or, with --listen, a local HTTP endpoint) to the
/// control plane, adding the agent's token. The token is read from an
/// environment variable, never from the command line (where other local users
/// could read it).
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The control plane's MCP endpoint, for example `https://mcp.example.com/mcp`.
    #[arg(long)]
    pub url: String,
    /// Name of the environment variable that holds the agent's token.
    #[arg(long, value_name = "VAR")]
    pub token_env: String,
    /// Serve a local Streamable HTTP endpoint at `http://ADDR/mcp` instead of
    /// stdio, for HTTP clients that cannot set headers (loopback only).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

pub async fn run(args: ConnectArgs) -> anyhow::Result<()> {
    let token = std::env::var(&args.token_env)
        .with_context(|| format!("environment variable {} is not set", args.token_env))?;
    if token.trim().is_empty() {
        bail!("environment variable {} is empty", args.token_env);
    }
    if let Some(listen) = args.listen {
        return super::local_proxy::run(listen, &args.url, &token).await;
    }
    let config =
        StreamableHttpClientTransportConfig::with_uri(args.url.as_str()).auth_header(token);
    let mut remote = StreamableHttpClientTransport::from_config(config);
    let mut local = IntoTransport::<RoleServer, _, _>::into_transport((
        tokio::io::stdin(),
        tokio::io::stdout(),
    ));
    relay(&mut local, &mut remote).await;
    let _ = Transport::<RoleClient>::close(&mut remote).await;
    Ok(())
}

enum Message<C, S> {
    FromClient(Option<C>),
    FromServer(Option<S>),
}

/// Pump messages both ways until either side closes.
async fn relay(local: &mut impl Transport<RoleServer>, remote: &mut impl Transport<RoleClient>) {
    loop {
        let message = tokio::select! {
            message = local.receive() => Message::FromClient(message),
            message = remote.receive() => Message::FromServer(message),
        };
        match message {
            Message::FromClient(Some(message)) => {
                if let Err(error) = remote.send(message).await {
                    tracing::error!(%error, "cannot reach the control plane");
                    return;
                }
            }
            Message::FromServer(Some(message)) => {
                if local.send(message).await.is_err() {
                    return;
                }
            }
            Message::FromClient(None) => return,
            Message::FromServer(None) => {
                tracing::error!("the control plane closed the connection");
                return;
            }
        }
    }
}
