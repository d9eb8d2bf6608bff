//! The `audit` section: where records go, and what happens when they cannot.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::SecretSource;

/// Where audit records are stored. Without an `audit` section: one SQLite
/// file beside the catalog, fail-closed.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Every sink receives every record.
    #[serde(default = "default_sinks")]
    pub sinks: Vec<SinkConfig>,
    /// Where records wait while a sink is down (relative to the catalog).
    #[serde(default = "default_spool_dir")]
    pub spool_dir: PathBuf,
    /// What happens when a record can be written neither to a sink nor to
    /// the spool: `fail-closed` refuses calls with 503, `fail-open` serves
    /// on (counting and logging every lost record).
    #[serde(default)]
    pub on_failure: FailureMode,
    /// Longest one operation of a sink (connecting, a batch's write, a
    /// spool replay, retention) may take. A sink that does not answer in
    /// time is a failing sink: its records go to its spool, and it is
    /// connected to afresh.
    #[serde(default = "default_sink_timeout", with = "humantime_serde")]
    pub timeout: std::time::Duration,
    /// Least free space (bytes) on the disk of a file sink or of the spool
    /// at start: a nearly full disk is refused then, not found out later.
    #[serde(default = "default_min_free_bytes")]
    pub min_free_bytes: u64,
}

fn default_min_free_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_sink_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(5)
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            sinks: default_sinks(),
            spool_dir: default_spool_dir(),
            on_failure: FailureMode::default(),
            timeout: default_sink_timeout(),
            min_free_bytes: default_min_free_bytes(),
        }
    }
}

fn default_sinks() -> Vec<SinkConfig> {
    vec![SinkConfig::Sqlite(SqliteSinkConfig {
        path: PathBuf::from(".mcp-control-plane/audit.db"),
        durability: Durability::default(),
        retention: Retention::default(),
    })]
}

fn default_spool_dir() -> PathBuf {
    PathBuf::from(".mcp-control-plane/spool")
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureMode {
    #[default]
    FailClosed,
    FailOpen,
}

/// One audit sink, written as a one-key map (`- sqlite: {path: audit.db}`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "SinkEntry")]
pub enum SinkConfig {
    /// An embedded SQLite database (WAL mode).
    Sqlite(SqliteSinkConfig),
    /// A PostgreSQL database; the table is created by the control plane.
    Postgres(PostgresSinkConfig),
    /// JSON lines on stdout (`path: "-"`) or in a size-rotated file.
    Jsonl(JsonlSinkConfig),
    /// A Kafka topic, keyed by trace id.
    Kafka(KafkaSinkConfig),
}

/// The written form of a sink.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkEntry {
    sqlite: Option<SqliteSinkConfig>,
    postgres: Option<PostgresSinkConfig>,
    jsonl: Option<JsonlSinkConfig>,
    kafka: Option<KafkaSinkConfig>,
}

impl TryFrom<SinkEntry> for SinkConfig {
    type Error = &'static str;

    fn try_from(entry: SinkEntry) -> Result<Self, Self::Error> {
        match (entry.sqlite, entry.postgres, entry.jsonl, entry.kafka) {
            (Some(sqlite), None, None, None) => Ok(Self::Sqlite(sqlite)),
            (None, Some(postgres), None, None) => Ok(Self::Postgres(postgres)),
            (None, None, Some(jsonl), None) => Ok(Self::Jsonl(jsonl)),
            (None, None, None, Some(kafka)) => Ok(Self::Kafka(kafka)),
            _ => Err("set exactly one of `sqlite`, `postgres`, `jsonl` and `kafka`"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SqliteSinkConfig {
    /// The database file, relative to the catalog's directory.
    pub path: PathBuf,
    /// What an acknowledged record survives.
    #[serde(default)]
    pub durability: Durability,
    #[serde(flatten)]
    pub retention: Retention,
}

/// What a record the store has acknowledged survives.
///
/// The default keeps the control plane's promise, that a call the
/// control plane answered is never lost when its process dies (`kill -9`),
/// without waiting for the disk twice per call; surviving the machine's
/// crash too is a setting, with its price (README, "Performance").
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// Each commit is with the operating system when it returns, without
    /// waiting for the disk: a record survives the process dying, not the
    /// operating system or the power failing.
    #[default]
    ProcessCrash,
    /// Each commit is on the disk when it returns (`fsync`): a record
    /// survives the process, the operating system and the power failing.
    PowerLoss,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkConfig {
    /// The connection string (`postgres://user@host:5432/db`), read from
    /// the environment or a file, since it may hold a password.
    pub url: SecretSource,
    #[serde(flatten)]
    pub retention: Retention,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JsonlSinkConfig {
    /// A file (relative to the catalog's directory), or `-` for stdout.
    pub path: PathBuf,
    /// Rotate the file when it grows beyond this many bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept (`audit.jsonl.1` is the newest).
    #[serde(default = "default_keep")]
    pub keep: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Bootstrap brokers (`host:port`).
    pub brokers: Vec<String>,
    pub topic: String,
    /// Partitions of the topic (created with this many if missing).
    #[serde(default = "default_partitions")]
    pub partitions: i32,
}

fn default_partitions() -> i32 {
    1
}

fn default_max_bytes() -> u64 {
    100 * 1024 * 1024
}

fn default_keep() -> u32 {
    5
}

/// How long and how many records a database store keeps.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Records older than this are deleted (`90d`, `1y`). Default `90d`, so
    /// a store never grows without bound; `null` keeps every record.
    #[serde(default = "default_max_age", with = "humantime_serde")]
    pub max_age: Option<Duration>,
    /// Only the newest this many records are kept. Default: all.
    pub max_records: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: default_max_age(),
            max_records: None,
        }
    }
}

fn default_max_age() -> Option<Duration> {
    Some(Duration::from_secs(90 * 24 * 60 * 60))
}

/// An administrator: may read the audit trail (`/admin/audit`), nothing else.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Lower-case hex SHA-256 of the admin's token.
    pub token_sha256: String,
}

/// Whether a tool's arguments are recorded (beyond their digest).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ToolAuditConfig {
    /// Record the arguments themselves.
    #[serde(default)]
    pub arguments: bool,
    /// Argument fields (at any depth) recorded as `"[redacted]"`.
    #[serde(default)]
    pub redact: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_keeps_ninety_days_unless_told_otherwise() {
        let sink = |yaml: &str| -> SqliteSinkConfig { yaml_serde::from_str(yaml).unwrap() };
        let ninety = Some(Duration::from_secs(90 * 86_400));
        assert_eq!(sink("path: a.db").retention.max_age, ninety);
        assert_eq!(
            sink("{path: a.db, max_age: 7d}").retention.max_age,
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(sink("{path: a.db, max_age: null}").retention.max_age, None);
        assert_eq!(AuditSettings::default().min_free_bytes, 64 << 20);
    }
}
