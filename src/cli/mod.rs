//! The command line: one file per verb. `main` only parses and hands over.

mod audit;
mod catalog;
mod check;
mod connect;
mod example_server;
mod keys;
mod local_proxy;
mod logging;
mod pins;
mod policy;
mod serve;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use logging::{LogFormat, LoggingArgs};

/// MCP Control Plane: one address between AI agents and MCP servers, with
/// per-role discovery, verified identity, policy and an audit record for every call.
#[derive(Debug, Parser)]
#[command(name = "mcp-control-plane", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub logging: LoggingArgs,
    /// Let symbolic links among the catalog's files (the catalog, its
    /// policy and data files, the lock) lead out of the catalog's
    /// directory. Off by default: whoever can write the catalog could
    /// otherwise point it at any file the process may read.
    #[arg(long, global = true, env = "MCP_CP_FOLLOW_SYMLINKS")]
    pub follow_symlinks: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Serve(serve::ServeArgs),
    Check(check::CheckArgs),
    Audit(audit::AuditArgs),
    Connect(connect::ConnectArgs),
    Token(token::TokenArgs),
    Keys(keys::KeysArgs),
    Policy(policy::PolicyArgs),
    Pins(pins::PinsArgs),
    Catalog(catalog::CatalogArgs),
    ExampleServer(example_server::ExampleServerArgs),
}

/// Run a parsed command line; the exit code says whether it succeeded.
pub fn run(cli: Cli) -> ExitCode {
    // HTTPS to upstreams and to the control plane (`connect`) uses rustls with
    // the ring provider; installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Err(error) = logging::init(&cli.logging) {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    crate::config::files::follow_symlinks(cli.follow_symlinks);
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Token(args) => {
            token::run(&args);
            ExitCode::SUCCESS
        }
        Command::Keys(args) => keys::run(&args),
        Command::Policy(args) => policy::run(&args),
        Command::Pins(args) => pins::run(args),
        Command::Serve(args) => runtime_then(|| serve::run(args)),
        Command::Audit(args) => runtime_then(|| audit::run(args)),
        Command::Catalog(args) => runtime_then(|| catalog::run(args)),
        Command::Connect(args) => runtime_then(|| connect::run(args)),
        Command::ExampleServer(args) => runtime_then(|| example_server::run(args)),
    }
}

fn runtime_then<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(f()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
