//! `audit`: read the audit trail from the catalog's store.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::audit::query::{Filter, FilterSpec, Store};
use crate::config;

/// Print audit records from the catalog's audit store.
///
/// Reads the first SQLite or PostgreSQL sink of the catalog's `audit`
/// section, oldest first: a readable table, or JSON lines with `--json`.
/// `--since`/`--until` take RFC 3339 times or ages (`15m`, `2h`).
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The catalog file whose `audit` section names the store.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Only this trace.
    #[arg(long)]
    pub trace: Option<String>,
    /// Only this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only this tool (public name).
    #[arg(long)]
    pub tool: Option<String>,
    /// Only this outcome (`ok`, `denied_policy`, ...).
    #[arg(long)]
    pub outcome: Option<String>,
    /// Records from this time (or age) on.
    #[arg(long)]
    pub since: Option<String>,
    /// Records before this time (or age).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many records, oldest first (per poll with `--follow`).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Keep printing new records as they arrive.
    #[arg(long)]
    pub follow: bool,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let file = config::load_file(&args.config).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let base_dir = args.config.parent().map(PathBuf::from).unwrap_or_default();
    let store = Store::of(&file.audit, &base_dir).map_err(anyhow::Error::msg)?;
    let (json, follow) = (args.json, args.follow);
    let mut filter = FilterSpec {
        trace_id: args.trace,
        agent_id: args.agent,
        tool: args.tool,
        outcome: args.outcome,
        since: args.since,
        until: args.until,
        limit: Some(args.limit),
        cursor: None,
    }
    .filter()
    .map_err(anyhow::Error::msg)?;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let printed = print_all(&mut out, &store, &mut filter, json, follow).await;
    match printed {
        // A reader that stopped reading (`| head`) is no error.
        Err(Printed::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(Printed::Io(e)) => Err(e.into()),
        Err(Printed::Query(problem)) => Err(anyhow::anyhow!(problem)),
        Ok(()) => Ok(()),
    }
}

enum Printed {
    Io(std::io::Error),
    Query(String),
}

impl From<std::io::Error> for Printed {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

/// Print at most `--limit` records (per poll with `--follow`, forever).
async fn print_all(
    out: &mut impl Write,
    store: &Store,
    filter: &mut Filter,
    json: bool,
    follow: bool,
) -> Result<(), Printed> {
    if !json {
        writeln!(
            out,
            "{:<24} {:<32} {:<14} {:<12} {:<16} {:<14} {:<16} {:>9}",
            "TIME", "TRACE", "AGENT", "ACTION", "TOOL", "SERVER", "OUTCOME", "MS"
        )?;
    }
    loop {
        let page = store.query(filter).await.map_err(Printed::Query)?;
        for record in &page.records {
            print_record(out, record, json)?;
        }
        out.flush()?;
        if let Some(last) = page.last() {
            filter.after = Some(last);
        }
        if !follow {
            return Ok(());
        }
        if page.next_cursor.is_none() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

fn print_record(out: &mut impl Write, record: &Value, json: bool) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{record}");
    }
    let field = |name: &str| record[name].as_str().unwrap_or("").to_string();
    writeln!(
        out,
        "{:<24} {:<32} {:<14} {:<12} {:<16} {:<14} {:<16} {:>9.1}",
        field("time"),
        field("trace_id"),
        field("agent_id"),
        field("action"),
        field("tool"),
        field("server"),
        field("outcome"),
        record["latency_ms"].as_f64().unwrap_or(0.0)
    )
}
