//! `audit`: read the audit trail from the catalog's store.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::audit::query::{FilterSpec, Store};
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
    /// At most this many records (per poll with `--follow`).
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
    if !args.json {
        println!(
            "{:<24} {:<32} {:<14} {:<12} {:<16} {:<14} {:<16} {:>9}",
            "TIME", "TRACE", "AGENT", "ACTION", "TOOL", "SERVER", "OUTCOME", "MS"
        );
    }
    loop {
        let page = store.query(&filter).await.map_err(anyhow::Error::msg)?;
        for record in &page.records {
            print_record(record, args.json);
        }
        if let Some(last) = page.last() {
            filter.after = Some(last);
        }
        if page.next_cursor.is_some() {
            continue;
        }
        if !args.follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn print_record(record: &Value, json: bool) {
    if json {
        println!("{record}");
        return;
    }
    let field = |name: &str| record[name].as_str().unwrap_or("").to_string();
    println!(
        "{:<24} {:<32} {:<14} {:<12} {:<16} {:<14} {:<16} {:>9.1}",
        field("time"),
        field("trace_id"),
        field("agent_id"),
        field("action"),
        field("tool"),
        field("server"),
        field("outcome"),
        record["latency_ms"].as_f64().unwrap_or(0.0)
    );
}
