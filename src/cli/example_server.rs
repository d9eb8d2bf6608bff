//! `example-server`: run one of the shipped example's MCP servers.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use mcp_example_servers::{
    self as example_servers, CredentialCheck, ExampleServer, ISSUER_ENV, JWKS_URL_ENV,
};

/// Run one of the trading example's MCP servers.
///
/// marketdata, execution or research: over stdio by default (how
/// `examples/trading/catalog.yaml` launches them), or over Streamable HTTP at
/// `/mcp` with `--listen`.
#[derive(Debug, Args)]
pub struct ExampleServerArgs {
    /// Which server to run.
    #[arg(value_enum)]
    pub server: ExampleServer,
    /// Serve Streamable HTTP on this address instead of stdio (port 0 picks one).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Simulated backend latency added to every tool call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// The control plane's JWKS: every call must carry a credential signed by
    /// one of its keys. The control plane sets the variable for the stdio
    /// servers it starts.
    #[arg(long, env = JWKS_URL_ENV, required_unless_present = "no_verify")]
    pub jwks: Option<String>,
    /// The issuer the credentials must name.
    #[arg(long, env = ISSUER_ENV, default_value = "mcp-control-plane")]
    pub issuer: String,
    /// The audience the credentials must name; defaults to the server's name.
    #[arg(long)]
    pub audience: Option<String>,
    /// Accept calls without checking their credential (demos only).
    #[arg(long, conflicts_with = "jwks")]
    pub no_verify: bool,
}

pub async fn run(args: ExampleServerArgs) -> anyhow::Result<()> {
    let latency = Duration::from_millis(args.latency_ms);
    let audience = args.audience.as_deref().unwrap_or(args.server.name());
    let check = args
        .jwks
        .filter(|_| !args.no_verify)
        .map(|jwks| CredentialCheck::new(&jwks, &args.issuer, audience));
    match args.listen {
        None => example_servers::serve_stdio(args.server, latency, check).await,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!(
                "{}",
                example_servers::listening_line(listener.local_addr()?)
            );
            example_servers::serve_http(args.server, latency, check, listener).await
        }
    }
}
