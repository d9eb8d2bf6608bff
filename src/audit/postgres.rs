//! The PostgreSQL sink. The control plane creates its table itself
//! (versioned migrations in `audit_schema_migrations`), writes each batch
//! with one statement, reconnects after a failure, and speaks TLS when the
//! server offers it (or the connection string requires it).

use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

use rustls_platform_verifier::Verifier;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::query::{Filter, Page, Param};
use super::record::StoredRecord;
use super::spool::Sink;
use crate::config::Retention;

/// The migrations, in order; each runs once.
const MIGRATIONS: &[&str] = &["
CREATE TABLE IF NOT EXISTS audit_records (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    time_ms BIGINT NOT NULL,
    trace_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    outcome TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_records_time ON audit_records (time_ms);
CREATE INDEX IF NOT EXISTS audit_records_trace ON audit_records (trace_id);
CREATE INDEX IF NOT EXISTS audit_records_agent ON audit_records (agent_id, seq);
"];

pub struct PostgresSink {
    url: String,
    client: Option<Connected>,
    retention: Retention,
}

/// A client and the task driving its connection, ended together: a
/// connection to a server that stopped answering is not left behind.
struct Connected {
    client: Client,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl PostgresSink {
    pub fn new(url: String, retention: Retention) -> Self {
        Self {
            url,
            client: None,
            retention,
        }
    }

    /// The connection, opened (and migrated) if there is none.
    async fn client(&mut self) -> Result<&Client, String> {
        if self.client.as_ref().is_none_or(|c| c.client.is_closed()) {
            self.client = None;
            self.client = Some(connect(&self.url).await?);
        }
        (self.client.as_ref())
            .map(|c| &c.client)
            .ok_or_else(|| "not connected".into())
    }

    async fn run<T>(
        &mut self,
        op: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, String> {
        let client = self.client().await?;
        let result = op(client).await;
        if result.is_err() {
            // Reconnect next time: the failure may have been the connection.
            self.client = None;
        }
        result.map_err(|e| e.to_string())
    }
}

/// Connect and bring the schema up to date. TLS is used as the connection
/// string's `sslmode` says (`prefer` by default: TLS when the server offers
/// it, certificates checked against the platform's roots; `require` insists;
/// `disable` never).
async fn connect(url: &str) -> Result<Connected, String> {
    // Never the URL in errors: it may hold a password.
    let failed =
        |e: tokio_postgres::Error| format!("cannot connect to PostgreSQL: {}", without_details(&e));
    let tls = tls().map_err(|e| format!("cannot set up TLS for PostgreSQL: {e}"))?;
    let (client, connection) = tokio_postgres::connect(url, tls).await.map_err(failed)?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut connected = Connected { client, driver };
    migrate(&mut connected.client)
        .await
        .map_err(|e| e.to_string())?;
    Ok(connected)
}

/// rustls with the ring provider and the platform's certificate roots.
fn tls() -> Result<MakeRustlsConnect, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Verifier::new(provider.clone())?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// What went wrong, without the connection string: the server's own message,
/// or the kind of failure and its cause (a refused connection, a
/// certificate that did not verify). tokio-postgres puts neither the
/// connection string nor the password in either.
fn without_details(error: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match (error.as_db_error(), error.source()) {
        (Some(db), _) => db.message().to_string(),
        (None, Some(cause)) => format!("{error}: {cause}"),
        (None, None) => error.to_string(),
    }
}

async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS audit_schema_migrations (version INTEGER PRIMARY KEY)",
        )
        .await?;
    for (i, migration) in MIGRATIONS.iter().enumerate() {
        let version = i as i32 + 1;
        let transaction = client.transaction().await?;
        let done = transaction
            .query_opt(
                "SELECT 1 FROM audit_schema_migrations WHERE version = $1",
                &[&version],
            )
            .await?;
        if done.is_none() {
            transaction.batch_execute(migration).await?;
            transaction
                .execute("INSERT INTO audit_schema_migrations (version) VALUES ($1) ON CONFLICT DO NOTHING", &[&version])
                .await?;
        }
        transaction.commit().await?;
    }
    Ok(())
}

impl Sink for PostgresSink {
    fn name(&self) -> &str {
        "postgres"
    }

    fn write<'a>(&'a mut self, batch: &'a [StoredRecord]) -> BoxFuture<'a, Result<(), String>> {
        // One statement may touch a row once: an intent and its outcome in
        // one batch (a replayed spool) go in as the outcome alone.
        let batch = StoredRecord::latest_per_id(batch);
        let column =
            |f: fn(&StoredRecord) -> String| batch.iter().map(|r| f(r)).collect::<Vec<String>>();
        let ids = column(|r| r.id.clone());
        let traces = column(|r| r.trace_id.clone());
        let agents = column(|r| r.agent_id.clone());
        let tools = column(|r| r.tool.clone());
        let outcomes = column(|r| r.outcome.clone());
        let records = column(|r| r.json.clone());
        let times: Vec<i64> = batch.iter().map(|r| r.time_ms).collect();
        Box::pin(async move {
            self.run(async |client| {
                client
                    .execute(
                        "INSERT INTO audit_records (id, time_ms, trace_id, agent_id, tool, outcome, record) \
                         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) \
                         ON CONFLICT (id) DO UPDATE SET outcome = EXCLUDED.outcome, record = EXCLUDED.record \
                         WHERE audit_records.outcome = 'unfinished'",
                        &[&ids, &times, &traces, &agents, &tools, &outcomes, &records],
                    )
                    .await
            })
            .await
            .map(drop)
        })
    }

    fn reset(&mut self) {
        self.client = None;
    }

    fn enforce_retention(&mut self) -> BoxFuture<'_, Result<u64, String>> {
        let retention = self.retention.clone();
        Box::pin(async move {
            let mut deleted = 0;
            if let Some(max_age) = retention.max_age {
                let cutoff = super::sqlite::cutoff_ms(max_age);
                deleted += self
                    .run(async |c| {
                        c.execute("DELETE FROM audit_records WHERE time_ms < $1", &[&cutoff])
                            .await
                    })
                    .await?;
            }
            if let Some(max_records) = retention.max_records {
                let keep = max_records as i64;
                deleted += self
                    .run(async |c| {
                        c.execute(
                            "DELETE FROM audit_records WHERE seq <= (SELECT seq FROM audit_records ORDER BY seq DESC LIMIT 1 OFFSET $1)",
                            &[&keep],
                        )
                        .await
                    })
                    .await?;
            }
            Ok(deleted)
        })
    }
}

/// Records matching `filter`, oldest first, within `timeout`.
pub async fn query(url: &str, filter: &Filter, timeout: Duration) -> Result<Page, String> {
    let answered = tokio::time::timeout(timeout, query_now(url, filter)).await;
    answered.unwrap_or_else(|_| Err(format!("PostgreSQL did not answer within {timeout:?}")))
}

async fn query_now(url: &str, filter: &Filter) -> Result<Page, String> {
    let Connected { ref client, .. } = connect(url).await?;
    let (clause, values) = filter.sql_where(|n| format!("${n}"));
    let sql = format!(
        "SELECT seq, record FROM audit_records {clause} ORDER BY seq LIMIT {}",
        filter.limit
    );
    let params: Vec<&(dyn ToSql + Sync)> = values
        .iter()
        .map(|value| match value {
            Param::Text(text) => text as &(dyn ToSql + Sync),
            Param::Int(number) => number as &(dyn ToSql + Sync),
        })
        .collect();
    let rows = client
        .query(&sql, &params)
        .await
        .map_err(|e| e.to_string())?;
    let mut page = Page::default();
    for row in rows {
        page.push(row.get(0), row.get::<_, &str>(1));
    }
    page.finish(filter.limit);
    Ok(page)
}
