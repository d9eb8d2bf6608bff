//! The sink interface, and the spool that stands in for a sink while it is
//! down.
//!
//! While a sink fails, its records are appended (and synced) to a JSON-lines
//! spool file. From then on every new record goes to the spool too, so order
//! is kept; when the sink takes the spooled records again, the spool is
//! emptied. Sinks ignore records they already hold (by record id), so a
//! replay that was interrupted never duplicates.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::record::StoredRecord;

/// How often a sink with a backlog is asked to take it.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Where records are stored.
pub trait Sink: Send {
    fn name(&self) -> &str;

    /// Store `batch` durably, all or nothing, skipping records already held.
    fn write<'a>(&'a mut self, batch: &'a [StoredRecord]) -> BoxFuture<'a, Result<(), String>>;

    /// Delete what the retention settings no longer keep.
    fn enforce_retention(&mut self) -> BoxFuture<'_, Result<u64, String>> {
        Box::pin(std::future::ready(Ok(0)))
    }

    /// An operation did not finish in time: drop the connection it may
    /// still hang on, so the next one starts afresh.
    fn reset(&mut self) {}
}

/// A sink with its spool.
pub struct Spooled {
    sink: Box<dyn Sink>,
    spool: PathBuf,
    /// Records in the spool (the sink is behind while this is not zero).
    backlog: i64,
    /// When the sink was last asked to take the spool.
    last_retry: Option<Instant>,
    /// Longest one operation of the sink may take.
    timeout: Duration,
}

impl Spooled {
    /// `sink`, spooling to `spool`; records a previous run left there are
    /// replayed first.
    pub fn new(sink: Box<dyn Sink>, spool: PathBuf, timeout: Duration) -> Self {
        let backlog = read_spool(&spool).map_or(0, |records| records.len() as i64);
        Self {
            sink,
            spool,
            backlog,
            last_retry: None,
            timeout,
        }
    }

    /// Write `batch` to the sink, within the time limit.
    async fn write_in_time(&mut self, batch: &[StoredRecord]) -> Result<(), String> {
        let written = tokio::time::timeout(self.timeout, self.sink.write(batch)).await;
        self.in_time(written)
    }

    /// What a sink operation bounded by `self.timeout` gave: a sink that
    /// did not answer in time has failed, and is reset.
    fn in_time<T>(
        &mut self,
        answered: Result<Result<T, String>, tokio::time::error::Elapsed>,
    ) -> Result<T, String> {
        answered.unwrap_or_else(|_| {
            self.sink.reset();
            Err(format!("the sink did not answer within {:?}", self.timeout))
        })
    }

    pub fn name(&self) -> &str {
        self.sink.name()
    }

    pub fn backlog(&self) -> i64 {
        self.backlog
    }

    /// Store `batch` in the sink, or else in the spool. `Ok(true)`: in the
    /// sink; `Ok(false)`: in the spool; `Err`: in neither.
    pub async fn write(&mut self, batch: &[StoredRecord]) -> Result<bool, String> {
        self.retry_backlog().await;
        if self.backlog == 0 {
            match self.write_in_time(batch).await {
                Ok(()) => return Ok(true),
                Err(problem) => {
                    tracing::warn!(sink = self.sink.name(), %problem, "audit sink failed; spooling its records until it recovers");
                }
            }
        }
        let spool = self.spool.clone();
        let records = batch.to_vec();
        tokio::task::spawn_blocking(move || append_spool(&spool, &records))
            .await
            .map_err(|e| e.to_string())??;
        self.backlog += batch.len() as i64;
        Ok(false)
    }

    /// Hand the spooled records to the sink, if it takes them now.
    pub async fn retry_backlog(&mut self) {
        // A sink that is down may take long to say so: ask at most once per
        // `RETRY_EVERY`, and spool meanwhile.
        if self.backlog == 0 || self.last_retry.is_some_and(|at| at.elapsed() < RETRY_EVERY) {
            return;
        }
        self.last_retry = Some(Instant::now());
        // File I/O off the runtime's threads, like the spool's appends.
        let spool = self.spool.clone();
        let Ok(Ok(records)) = tokio::task::spawn_blocking(move || read_spool(&spool)).await else {
            return;
        };
        if self.write_in_time(&records).await.is_ok() {
            tracing::info!(
                sink = self.sink.name(),
                records = records.len(),
                "audit sink recovered; spooled records written"
            );
            if std::fs::remove_file(&self.spool).is_ok() {
                self.backlog = 0;
            }
        }
    }

    /// Whether a record handed to this sink now would be durable: its spool
    /// can be opened for appending. Asked while records could not be made
    /// durable, so that readiness returns without waiting for traffic.
    pub async fn probe(&mut self) -> bool {
        let spool = self.spool.clone();
        let empty = self.backlog == 0;
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&spool)
                .and_then(|file| file.sync_data().map(|()| file));
            let Ok(file) = file else {
                return false;
            };
            if empty && file.metadata().is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(&spool);
            }
            true
        })
        .await
        .unwrap_or(false)
    }

    pub async fn enforce_retention(&mut self) {
        let applied = tokio::time::timeout(self.timeout, self.sink.enforce_retention()).await;
        match self.in_time(applied) {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::info!(sink = self.sink.name(), deleted, "audit retention applied")
            }
            Err(problem) => {
                tracing::warn!(sink = self.sink.name(), %problem, "audit retention failed")
            }
        }
    }
}

fn read_spool(path: &PathBuf) -> Result<Vec<StoredRecord>, String> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let mut records = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| e.to_string())?;
        // A line torn by a crash mid-append is skipped: it was never acknowledged.
        if let Ok(record) = serde_json::from_str(&line) {
            records.push(record);
        }
    }
    Ok(records)
}

fn append_spool(path: &PathBuf, records: &[StoredRecord]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let mut text = String::new();
    for record in records {
        text.push_str(&serde_json::to_string(record).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open the spool {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| format!("cannot write the spool {}: {e}", path.display()))
}
