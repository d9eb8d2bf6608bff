//! Logging to stderr through `tracing`: level from `--log-level` or `RUST_LOG`,
//! human or JSON lines. Audit records are events on the `audit` target.

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

/// The default: our own events at `info`; the MCP SDK only when it warns,
/// and its service loop only on errors (it warns of every error answer,
/// each of which our own audit record and log already tell).
const DEFAULT_FILTER: &str = "info,rmcp=warn,rmcp::service=error";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Args)]
pub struct LoggingArgs {
    /// Log filter, for example `info` or `warn,audit=info`. Overrides RUST_LOG.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log line format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "human",
        env = "MCP_CP_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

pub fn init(args: &LoggingArgs) -> Result<(), String> {
    let filter = match &args.log_level {
        Some(level) => {
            EnvFilter::try_new(level).map_err(|e| format!("invalid --log-level: {e}"))?
        }
        None => {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
        }
    };
    // Colour codes only for a terminal: in files and log shippers they are noise.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let result = match args.log_format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| format!("cannot initialise logging: {e}"))
}
