//! `serve`: run the control plane.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::catalog::Catalog;
use crate::credentials::Credentials;
use crate::pipeline::Pipeline;
use crate::policy::Policies;
use crate::telemetry::otlp::SpanExport;
use crate::upstream::UpstreamPool;
use crate::{api, audit, config};

/// How often the signing key file is checked for a rotation.
const KEY_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// How often the policy files are checked for changes (SIGHUP reloads at once).
const POLICY_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Start the control plane on a catalog.
///
/// Connects to every upstream MCP server and serves the MCP endpoint (`/mcp`),
/// the REST API (`/tools`, `/invoke`), `/healthz` and `/readyz`. Prints
/// `listening on ADDR` on stdout once the port is bound.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The catalog file (YAML, or JSON with a `.json` extension).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080", env = "MCP_CP_LISTEN")]
    pub listen: SocketAddr,
    /// The signing key file for minted credentials, instead of the catalog's
    /// `credentials.key_file` (generated if missing).
    #[arg(long, env = "MCP_CP_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let file = config::load_file(&args.config).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let base_dir = args.config.parent().map(PathBuf::from).unwrap_or_default();
    let mut catalog = Catalog::compile(&file, &base_dir);
    if let Some(key_file) = args.key_file {
        // Relative to the working directory, like every command-line path.
        catalog.credentials.key_file = std::path::absolute(key_file)?;
    }
    let catalog = Arc::new(catalog);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let credentials = Arc::new(Credentials::open(&catalog, &base_dir, jwks_url(addr))?);
    let _key_watch = credentials.minter().watch(KEY_RELOAD_INTERVAL);
    let policies = Arc::new(Policies::open(file.policy.as_ref(), &base_dir)?);
    let _policy_watch = policies.watch(POLICY_RELOAD_INTERVAL);
    let otlp = (file.telemetry.otlp_endpoint.clone())
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .map(|endpoint| SpanExport::start(&endpoint))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let audit = audit::start(&file.audit, &base_dir, otlp).map_err(anyhow::Error::msg)?;
    let upstreams = UpstreamPool::start(&catalog, &credentials);
    let pipeline = Arc::new(Pipeline::new(
        catalog.clone(),
        policies,
        upstreams,
        credentials,
        audit,
    ));
    tracing::info!(
        %addr,
        environment = %catalog.environment,
        servers = catalog.servers().len(),
        "control plane started"
    );
    println!("{}", crate::example_servers::listening_line(addr));
    api::serve(listener, pipeline.clone(), shutdown_signal()).await?;
    // In-flight requests are done: write every record still queued.
    pipeline.audit().close().await;
    pipeline.upstreams().shutdown();
    tracing::info!("control plane stopped");
    Ok(())
}

/// The JWKS URL as seen from this host (stdio servers run here).
fn jwks_url(addr: SocketAddr) -> String {
    let mut local = addr;
    if local.ip().is_unspecified() {
        local.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{local}/.well-known/jwks.json")
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
