//! Audit: one record for every discovery and every call, whatever path it took.
//!
//! The pipeline opens an [`AuditGuard`] when a request enters and fills it in
//! as the request passes each stage ([`record`]). The guard hands its record
//! over exactly once: when the pipeline finishes it, which waits until the
//! record is durable ([`log`]: group commit to every sink, or the spool),
//! or, if the request is abandoned midway (the client hung up), when it is
//! dropped. Sinks: SQLite ([`sqlite`]), PostgreSQL ([`postgres`]), JSON lines
//! ([`jsonl`]), Kafka ([`kafka`]); the spool ([`spool`]) keeps records while a sink is down.
//! Every record is also one log event on the `audit` target.

mod guard;
pub mod jsonl;
pub mod kafka;
pub mod log;
pub mod postgres;
pub mod query;
pub mod record;
pub mod spool;
pub mod sqlite;
mod tally;

pub use guard::AuditGuard;
pub use log::{AuditError, AuditLog, Observer};
pub use record::AuditRecord;

/// Open every configured sink (with its spool) and start the audit log;
/// `observers` hear of each finished record.
pub fn start(
    settings: &crate::config::AuditSettings,
    base_dir: &std::path::Path,
    observers: Vec<std::sync::Arc<dyn Observer>>,
) -> Result<AuditLog, String> {
    use crate::config::SinkConfig;
    let spool_dir = base_dir.join(&settings.spool_dir);
    std::fs::create_dir_all(&spool_dir)
        .map_err(|e| format!("audit.spool_dir {}: {e}", spool_dir.display()))?;
    let roomy = |what: &str, dir: &std::path::Path| room_on(dir, settings.min_free_bytes, what);
    roomy("audit.spool_dir", &spool_dir)?;
    let mut sinks = Vec::new();
    for (i, sink) in settings.sinks.iter().enumerate() {
        let opened: Box<dyn spool::Sink> = match sink {
            SinkConfig::Sqlite(config) => Box::new({
                let path = base_dir.join(&config.path);
                roomy(&format!("audit.sinks[{i}] (sqlite)"), parent(&path))?;
                sqlite::SqliteSink::open(&path, config.durability, config.retention.clone())
                    .map_err(|e| format!("audit.sinks[{i}] (sqlite): {e}"))?
            }),
            SinkConfig::Postgres(config) => Box::new(postgres::PostgresSink::new(
                config
                    .url
                    .read(base_dir)
                    .map_err(|e| format!("audit.sinks[{i}].url: {e}"))?,
                config.retention.clone(),
            )),
            SinkConfig::Kafka(config) => Box::new(kafka::KafkaSink::new(
                config.brokers.clone(),
                config.topic.clone(),
                config.partitions,
            )),
            SinkConfig::Jsonl(config) => {
                let path = (config.path.as_os_str() != "-").then(|| base_dir.join(&config.path));
                if let Some(path) = &path {
                    roomy(&format!("audit.sinks[{i}] (jsonl)"), parent(path))?;
                }
                Box::new(jsonl::JsonlSink::new(path, config.max_bytes, config.keep))
            }
        };
        let spool = spool_dir.join(format!("sink-{i}.jsonl"));
        sinks.push(spool::Spooled::new(opened, spool, settings.timeout));
    }
    let store = query::Store::of(settings, base_dir).ok();
    Ok(AuditLog::start(
        sinks,
        settings.on_failure,
        store,
        observers,
    ))
}

/// The directory a file sink writes in (created if missing).
fn parent(path: &std::path::Path) -> &std::path::Path {
    path.parent().unwrap_or(std::path::Path::new("."))
}

/// Refuse a store on a nearly full disk at start, saying so, rather than
/// find out when records can no longer be written.
fn room_on(dir: &std::path::Path, least: u64, what: &str) -> Result<(), String> {
    let _ = std::fs::create_dir_all(dir);
    let Ok(stats) = rustix::fs::statvfs(dir) else {
        // Cannot tell (a filesystem without statvfs): the writes will say.
        return Ok(());
    };
    let free = stats.f_bavail.saturating_mul(stats.f_frsize);
    if free < least {
        return Err(format!(
            "{what}: the disk holding {} has {} MiB free, less than audit.min_free_bytes ({} MiB); free some space or move the store",
            dir.display(),
            free / (1024 * 1024),
            least / (1024 * 1024),
        ));
    }
    Ok(())
}
