//! `serve`: run the control plane.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::api::App;
use crate::aws::dynamodb::TableUrl;
use crate::live::mirror::Mirror;
use crate::live::{self, Live};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::otlp::SpanExport;
use crate::{api, audit};

/// How often the signing key file is checked for a rotation.
const KEY_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Start the control plane on a catalog.
///
/// Connects to every upstream MCP server and serves the agents' address (the
/// MCP endpoint `/mcp`, the REST API `/tools` and `/invoke`, `/healthz`, a
/// `/readyz` that says ready or not) and, on a listener of its own, the
/// operators' surface (`/metrics`, the detailed `/readyz`, the console
/// `/ui/`, `/admin/*`). Prints `listening on ADDR` and then
/// `admin listening on ADDR` on stdout once both are bound.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The catalog file (YAML, or JSON with a `.json` extension).
    #[arg(
        long,
        short,
        required_unless_present = "catalog",
        conflicts_with = "catalog"
    )]
    pub config: Option<PathBuf>,
    /// Where the catalog is: a file, or a DynamoDB table
    /// (`dynamodb://TABLE?region=REGION[&endpoint_url=URL][&poll=10s]`),
    /// read at start and every `poll` after.
    #[arg(long)]
    pub catalog: Option<String>,
    /// Where a table's catalog is written out to be served (its policy
    /// files, signing key and audit store live there too). Default:
    /// `.mcp-control-plane/catalogs/TABLE` in the working directory.
    #[arg(long)]
    pub catalog_dir: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080", env = "MCP_CP_LISTEN")]
    pub listen: SocketAddr,
    /// Address of the operators' listener (`/metrics`, the detailed
    /// `/readyz`, the console, `/admin/*`), instead of the catalog's
    /// `http.admin_listen`. Default: a free loopback port, so agents cannot
    /// reach it and two instances on one machine never collide.
    #[arg(long, env = "MCP_CP_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// The signing key file for minted credentials, instead of the catalog's
    /// `credentials.key_file` (generated if missing).
    #[arg(long, env = "MCP_CP_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Reload only on SIGHUP: do not watch the catalog's files for changes
    /// (for deployments that change several files and then say when).
    /// Not with a DynamoDB table, whose changes arrive as file changes.
    #[arg(long, env = "MCP_CP_NO_WATCH")]
    pub no_watch: bool,
}

/// The catalog file to serve, and the mirror of a table that keeps it in
/// step with the table (while it is held).
async fn catalog_file(args: &ServeArgs) -> anyhow::Result<(PathBuf, Option<Mirror>)> {
    let named = match (&args.config, &args.catalog) {
        (Some(path), _) => return Ok((path.clone(), None)),
        (None, Some(named)) => named,
        (None, None) => anyhow::bail!("give the catalog with --config FILE or --catalog"),
    };
    if !TableUrl::is_table(named) {
        return Ok((PathBuf::from(named), None));
    }
    let url = TableUrl::parse(named)?;
    let dir = (args.catalog_dir.clone())
        .unwrap_or_else(|| PathBuf::from(".mcp-control-plane/catalogs").join(&url.table));
    let mirror = Mirror::start(&url, &std::path::absolute(&dir)?).await?;
    Ok((mirror.catalog.clone(), Some(mirror)))
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // Relative to the working directory, like every command-line path.
    let (config, _mirror) = catalog_file(&args).await?;
    if args.no_watch && _mirror.is_some() {
        anyhow::bail!(
            "--no-watch cannot serve a DynamoDB table: its changes arrive as file changes"
        );
    }
    let key_file = args.key_file.map(std::path::absolute).transpose()?;
    let live = Live::start(&config, key_file, jwks_url(addr))?;
    let _key_watch = live.signer().minter.watch(KEY_RELOAD_INTERVAL);
    let _catalog_watch = live::watch(&live, !args.no_watch);
    let started = live.started();
    // The audit writer hands every finished record to its observers.
    let metrics = Arc::new(Metrics::default());
    let tail = Arc::new(api::ConsoleTail::default());
    let latency = Arc::new(api::RecentLatency::default());
    let mut observers: Vec<Arc<dyn audit::Observer>> =
        vec![metrics.clone(), tail.clone(), latency.clone()];
    let otlp = (started.telemetry.otlp_endpoint.clone())
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok());
    if let Some(endpoint) = otlp {
        observers.push(Arc::new(
            SpanExport::start(&endpoint).map_err(anyhow::Error::msg)?,
        ));
    }
    let audit =
        audit::start(&started.audit, live.base_dir(), observers).map_err(anyhow::Error::msg)?;
    let admin_addr = (args.admin_listen)
        .or(started.http.admin_listen)
        .unwrap_or_else(|| loopback(addr));
    let admin = tokio::net::TcpListener::bind(admin_addr)
        .await
        .with_context(|| format!("cannot listen on {admin_addr} (the admin listener)"))?;
    let admin_addr = admin.local_addr()?;
    let origins = started.http.admin_origins(admin_addr);
    let app = App::new(live.clone(), audit.clone(), metrics, tail, latency, origins);
    let snapshot = live.current();
    tracing::info!(
        %addr,
        admin = %admin_addr,
        environment = %snapshot.catalog.environment,
        servers = snapshot.catalog.servers().len(),
        version = %snapshot.version,
        "control plane started"
    );
    drop(snapshot);
    // One write: whoever reads the first line may close the pipe after it.
    let _ = std::io::Write::write_all(
        &mut std::io::stdout().lock(),
        format!("listening on {addr}\nadmin listening on {admin_addr}\n").as_bytes(),
    );
    let listeners = api::Listeners {
        agents: listener,
        admin,
    };
    api::serve(listeners, app, shutdown_signal()).await?;
    // In-flight requests are done: write every record still queued.
    audit.close().await;
    live.pool().shutdown();
    tracing::info!("control plane stopped");
    Ok(())
}

/// The JWKS URL as seen from this host (stdio servers run here).
fn jwks_url(addr: SocketAddr) -> String {
    let mut local = addr;
    if local.ip().is_unspecified() {
        local.set_ip(loopback(addr).ip());
    }
    format!("http://{local}/.well-known/jwks.json")
}

/// A free port on the loopback address of `addr`'s family: the admin
/// listener's default.
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::LOCALHOST, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
    }
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
