//! `example-server`: run one of the shipped example's MCP servers.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::example_servers::{self, ExampleServer};

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
}

pub async fn run(args: ExampleServerArgs) -> anyhow::Result<()> {
    let latency = Duration::from_millis(args.latency_ms);
    match args.listen {
        None => example_servers::serve_stdio(args.server, latency).await,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!(
                "{}",
                example_servers::listening_line(listener.local_addr()?)
            );
            example_servers::serve_http(args.server, latency, listener).await
        }
    }
}
