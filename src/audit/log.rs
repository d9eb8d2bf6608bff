//! The audit log: hands records to every sink in batches (group commit) and
//! tells each request when its record is durable.
//!
//! One writer task owns the sinks. Requests send their record and wait; the
//! writer takes everything that is waiting, writes it to every sink in one
//! transaction each (or to the sink's spool if the sink is down), then
//! answers all of them. So durability costs one commit per batch, not per
//! request, and the more requests wait, the larger the batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::AuditRecord;
use super::query::Store;
use super::record::{LegRecord, StoredRecord};
use super::spool::Spooled;
use super::tally::Tally;
use crate::config::FailureMode;
use crate::vocabulary::Outcome;

/// Most records written in one batch.
const MAX_BATCH: usize = 1024;
/// How often an idle writer retries spooled records and enforces retention.
const TICK: Duration = Duration::from_secs(1);
/// Retention runs every this many ticks.
const RETENTION_TICKS: u32 = 60;

/// Why a record could not be made durable (fail-closed mode only), or
/// was not known to be durable in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("the audit trail is unavailable")]
    Unavailable,
    /// The request's deadline passed before its record was durable (the
    /// record is still on its way to the sinks or their spools).
    #[error("the audit trail did not answer in time")]
    TimedOut,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct AuditMetrics {
    /// Records handed over and not yet written.
    pub queued: AtomicI64,
    /// Records lost: neither a sink nor its spool took them (in fail-closed
    /// mode the requests they belong to were refused or had their intent
    /// recorded).
    pub lost: AtomicU64,
    /// Per sink: (name, records written, records spooled, records waiting in the spool).
    pub sinks: Vec<SinkCounters>,
}

/// What wants every finished record (not the intents): request metrics,
/// span export. The writer hands each record to every observer, off the
/// requests' path.
pub trait Observer: Send + Sync {
    fn observe(&self, record: &AuditRecord);

    /// The log is closing: send on whatever is still buffered.
    fn close(&self) {}
}

#[derive(Default)]
pub struct SinkCounters {
    pub name: String,
    pub written: AtomicU64,
    pub spooled: AtomicU64,
    pub backlog: AtomicI64,
}

struct Entry {
    record: AuditRecord,
    ack: Option<oneshot::Sender<Result<(), AuditError>>>,
}

struct Shared {
    tx: mpsc::UnboundedSender<Entry>,
    mode: FailureMode,
    /// False after a record could not be made durable, until one could.
    healthy: AtomicBool,
    metrics: AuditMetrics,
    close: CancellationToken,
    closed: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The store the trail is read back from (the first database sink).
    store: Option<Store>,
    /// Who hears of each finished record.
    observers: Vec<Arc<dyn Observer>>,
    /// Unauthenticated refusals counted per address.
    tally: Tally,
}

/// A handle on the audit log; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    shared: Arc<Shared>,
}

impl AuditLog {
    /// Start the writer over `sinks`.
    pub fn start(
        sinks: Vec<Spooled>,
        mode: FailureMode,
        store: Option<Store>,
        observers: Vec<Arc<dyn Observer>>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let metrics = AuditMetrics {
            sinks: sinks
                .iter()
                .map(|s| SinkCounters {
                    name: s.name().to_string(),
                    ..SinkCounters::default()
                })
                .collect(),
            ..AuditMetrics::default()
        };
        let shared = Arc::new(Shared {
            tx,
            mode,
            healthy: AtomicBool::new(true),
            metrics,
            close: CancellationToken::new(),
            closed: tokio::sync::Mutex::new(None),
            store,
            observers,
            tally: Tally::default(),
        });
        let writer = tokio::spawn(write_loop(rx, sinks, shared.clone()));
        if let Ok(mut slot) = shared.closed.try_lock() {
            *slot = Some(writer);
        }
        Self { shared }
    }

    /// Hand `record` over and wait until every sink (or its spool) holds
    /// it, at most until `deadline`.
    pub async fn commit(
        &self,
        record: AuditRecord,
        deadline: Option<Instant>,
    ) -> Result<(), AuditError> {
        if self.shared.tally.absorb(&record) {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        self.send(record, Some(ack));
        let answered = match deadline {
            Some(deadline) => (tokio::time::timeout_at(deadline.into(), done).await)
                .map_err(|_| AuditError::TimedOut)?,
            None => done.await,
        };
        answered.unwrap_or(Err(AuditError::Unavailable))
    }

    /// Hand `record` over without waiting (an abandoned request).
    pub fn submit(&self, record: AuditRecord) {
        if !self.shared.tally.absorb(&record) {
            self.send(record, None);
        }
    }

    fn send(&self, record: AuditRecord, ack: Option<oneshot::Sender<Result<(), AuditError>>>) {
        // An intent is followed by its outcome: the log event (and the
        // observers, in the writer) come from that one.
        if record.outcome != Outcome::Unfinished {
            log_event(&record);
        }
        self.shared.metrics.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(rejected) = self.shared.tx.send(Entry { record, ack }) {
            // The writer is gone (shutdown): nothing can be made durable.
            self.shared.metrics.queued.fetch_sub(1, Ordering::Relaxed);
            if let Some(ack) = rejected.0.ack {
                let _ = ack.send(Err(AuditError::Unavailable));
            }
        }
    }

    /// Whether calls may proceed: in fail-closed mode, not while records
    /// cannot be made durable.
    pub fn accepting(&self) -> bool {
        self.shared.mode == FailureMode::FailOpen || self.writable()
    }

    /// Whether the last batch was made durable (in every sink or its spool).
    pub fn writable(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed)
    }

    /// Where the trail can be read back, if a database sink is configured.
    pub fn store(&self) -> Option<&Store> {
        self.shared.store.as_ref()
    }

    pub fn metrics(&self) -> &AuditMetrics {
        &self.shared.metrics
    }

    /// Write everything handed over so far, then stop the writer.
    pub async fn close(&self) {
        self.shared.close.cancel();
        if let Some(writer) = self.shared.closed.lock().await.take() {
            let _ = writer.await;
        }
        let shared = self.shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for observer in &shared.observers {
                observer.close();
            }
        })
        .await;
    }
}

async fn write_loop(
    mut rx: mpsc::UnboundedReceiver<Entry>,
    mut sinks: Vec<Spooled>,
    shared: Arc<Shared>,
) {
    let mut tick = tokio::time::interval(TICK);
    let mut ticks = 0u32;
    loop {
        let first = tokio::select! {
            biased;
            entry = rx.recv() => entry,
            _ = shared.close.cancelled() => None,
            _ = tick.tick() => {
                ticks += 1;
                write_summaries(&mut sinks, &shared, false).await;
                if !shared.healthy.load(Ordering::Relaxed) {
                    let mut durable = true;
                    for sink in sinks.iter_mut() {
                        durable &= sink.probe().await;
                    }
                    shared.healthy.store(durable, Ordering::Relaxed);
                }
                for (sink, counters) in sinks.iter_mut().zip(&shared.metrics.sinks) {
                    sink.retry_backlog().await;
                    if ticks.is_multiple_of(RETENTION_TICKS) {
                        sink.enforce_retention().await;
                    }
                    counters.backlog.store(sink.backlog(), Ordering::Relaxed);
                }
                continue;
            }
        };
        let Some(first) = first else {
            break;
        };
        let batch = more(&mut rx, vec![first]);
        write_batch(&mut sinks, &shared, batch).await;
    }
    // Shutting down: whatever is still queued is written before the end.
    rx.close();
    write_summaries(&mut sinks, &shared, true).await;
    loop {
        let batch = more(&mut rx, Vec::new());
        if batch.is_empty() {
            return;
        }
        write_batch(&mut sinks, &shared, batch).await;
    }
}

/// Write the summaries of counted refusals whose window ended (all of them
/// when `closing`), like any record.
async fn write_summaries(sinks: &mut [Spooled], shared: &Shared, closing: bool) {
    let batch: Vec<Entry> = (shared.tally.due(Instant::now(), closing).into_iter())
        .map(|record| {
            log_event(&record);
            shared.metrics.queued.fetch_add(1, Ordering::Relaxed);
            Entry { record, ack: None }
        })
        .collect();
    if !batch.is_empty() {
        write_batch(sinks, shared, batch).await;
    }
}

/// `batch` plus whatever else is waiting, up to [`MAX_BATCH`].
fn more(rx: &mut mpsc::UnboundedReceiver<Entry>, mut batch: Vec<Entry>) -> Vec<Entry> {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(entry) => batch.push(entry),
            Err(_) => break,
        }
    }
    batch
}

async fn write_batch(sinks: &mut [Spooled], shared: &Shared, batch: Vec<Entry>) {
    for entry in &batch {
        if entry.record.outcome != Outcome::Unfinished {
            for observer in &shared.observers {
                observer.observe(&entry.record);
            }
        }
    }
    let stored: Vec<StoredRecord> = batch
        .iter()
        .map(|e| StoredRecord::from(&e.record))
        .collect();
    let mut durable = true;
    for (sink, counters) in sinks.iter_mut().zip(&shared.metrics.sinks) {
        match sink.write(&stored).await {
            Ok(written) => {
                let counter = if written {
                    &counters.written
                } else {
                    &counters.spooled
                };
                counter.fetch_add(stored.len() as u64, Ordering::Relaxed);
            }
            Err(problem) => {
                tracing::error!(sink = sink.name(), %problem, records = stored.len(), "audit records could be written neither to the sink nor to its spool");
                durable = false;
            }
        }
        counters.backlog.store(sink.backlog(), Ordering::Relaxed);
    }
    shared.healthy.store(durable, Ordering::Relaxed);
    shared
        .metrics
        .queued
        .fetch_sub(batch.len() as i64, Ordering::Relaxed);
    if !durable {
        shared
            .metrics
            .lost
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
    let result = match (durable, shared.mode) {
        (true, _) | (false, FailureMode::FailOpen) => Ok(()),
        (false, FailureMode::FailClosed) => Err(AuditError::Unavailable),
    };
    for entry in batch {
        if let Some(ack) = entry.ack {
            let _ = ack.send(result);
        }
    }
}

/// Every record is also one event on the `audit` log target.
fn log_event(record: &AuditRecord) {
    let text = |v: &Option<Arc<str>>| v.as_deref().unwrap_or("").to_string();
    tracing::info!(
        target: "audit",
        trace_id = %record.trace,
        span_id = %hex::encode(record.trace.span_id),
        upstream_span_id = record.upstream().map(|u| hex::encode(u.span_id)).unwrap_or_default(),
        action = record.action.as_str(),
        front_door = record.front_door.as_str(),
        agent_id = text(&record.agent_id),
        role = text(&record.role),
        tool = text(&record.tool),
        upstream_tool = text(&record.upstream_tool),
        server = text(&record.server),
        environment = &*record.environment,
        catalog_version = text(&record.catalog_version),
        policy = record.policy.unwrap_or(""),
        reasons = record.reasons.join("; "),
        outcome = record.outcome.as_str(),
        latency_ms = record.latency_ms,
        arguments_sha256 = record.arguments_sha256.as_deref().unwrap_or(""),
        legs = %Legs(&record.legs),
        endpoint = text(&record.endpoint),
        via = record.via.unwrap_or(""),
        findings = %Json(&record.findings),
        redactions = %Json(&record.redactions),
        client = record.client.map(|c| c.to_string()).unwrap_or_default(),
        aggregated = record.aggregated,
        "audit"
    );
}

/// A value as JSON, written only if the event is.
struct Json<'a, T>(&'a T);

impl<T: serde::Serialize> std::fmt::Display for Json<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_string(self.0).map_err(|_| std::fmt::Error)?;
        f.write_str(&text)
    }
}

/// A record's legs as a JSON array, written only if the event is.
struct Legs<'a>(&'a [LegRecord]);

impl std::fmt::Display for Legs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let legs: Vec<_> = self.0.iter().map(LegRecord::to_json).collect();
        write!(f, "{}", serde_json::Value::Array(legs))
    }
}
