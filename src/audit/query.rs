//! Reading the audit trail back: filters, pages and cursors, shared by the
//! admin API and the `audit` command, over SQLite or PostgreSQL.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use humantime_serde::re::humantime;
use serde_json::Value;

use crate::config::{AuditSettings, SinkConfig};

/// Most records one page may hold.
pub const MAX_LIMIT: usize = 1000;

/// Which records to return.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub trace_id: Option<String>,
    pub agent_id: Option<String>,
    pub tool: Option<String>,
    pub outcome: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only records after this cursor (from a previous page).
    pub after: Option<i64>,
    pub limit: usize,
}

/// A value bound into a query.
#[derive(Debug, Clone)]
pub enum Param {
    Text(String),
    Int(i64),
}

impl Filter {
    /// The `WHERE` clause and its values; `placeholder(n)` spells the n-th
    /// parameter (`?1` for SQLite, `$1` for PostgreSQL).
    pub fn sql_where(&self, placeholder: impl Fn(usize) -> String) -> (String, Vec<Param>) {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        let mut add = |condition: &str, value: Param| {
            values.push(value);
            conditions.push(format!("{condition} {}", placeholder(values.len())));
        };
        let text = [
            ("trace_id =", &self.trace_id),
            ("agent_id =", &self.agent_id),
            ("tool =", &self.tool),
            ("outcome =", &self.outcome),
        ];
        for (condition, value) in text {
            if let Some(value) = value {
                add(condition, Param::Text(value.clone()));
            }
        }
        let numbers = [
            ("time_ms >=", self.since_ms),
            ("time_ms <", self.until_ms),
            ("seq >", self.after),
        ];
        for (condition, value) in numbers {
            if let Some(value) = value {
                add(condition, Param::Int(value));
            }
        }
        if conditions.is_empty() {
            (String::new(), values)
        } else {
            (format!("WHERE {}", conditions.join(" AND ")), values)
        }
    }
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Self::Text(text) => text.to_sql(),
            Self::Int(number) => number.to_sql(),
        }
    }
}

/// One page of records, oldest first.
#[derive(Debug, Default, serde::Serialize)]
pub struct Page {
    pub records: Vec<Value>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    #[serde(skip)]
    last: Option<i64>,
}

impl Page {
    pub fn push(&mut self, seq: i64, record: &str) {
        if let Ok(value) = serde_json::from_str(record) {
            self.records.push(value);
            self.last = Some(seq);
        }
    }

    /// The cursor after the last record of this page, if it has any.
    pub fn last(&self) -> Option<i64> {
        self.last
    }

    /// A full page may have a successor.
    pub fn finish(&mut self, limit: usize) {
        if self.records.len() >= limit {
            self.next_cursor = self.last.map(|seq| seq.to_string());
        }
    }
}

/// The filter that query parameters (API) or flags (CLI) describe; `since`
/// and `until` as [`parse_time`] reads them; `limit` capped at [`MAX_LIMIT`].
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    pub trace_id: Option<String>,
    pub agent_id: Option<String>,
    pub tool: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl FilterSpec {
    pub fn filter(self) -> Result<Filter, String> {
        let time = |t: Option<String>| t.as_deref().map(parse_time).transpose();
        let after = self
            .cursor
            .map(|c| {
                c.parse::<i64>()
                    .map_err(|_| format!("`{c}` is not a cursor from a previous page"))
            })
            .transpose()?;
        Ok(Filter {
            trace_id: self.trace_id,
            agent_id: self.agent_id,
            tool: self.tool,
            outcome: self.outcome,
            since_ms: time(self.since)?,
            until_ms: time(self.until)?,
            after,
            limit: self.limit.unwrap_or(100).clamp(1, MAX_LIMIT),
        })
    }
}

/// A time bound: RFC 3339 (`2026-11-25T12:00:00Z`) or an age (`15m`, `2h`).
pub fn parse_time(text: &str) -> Result<i64, String> {
    let time = match humantime::parse_rfc3339_weak(text) {
        Ok(time) => time,
        Err(_) => {
            let age = humantime::parse_duration(text)
                .map_err(|_| format!("`{text}` is neither an RFC 3339 time nor a duration"))?;
            SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH)
        }
    };
    let ms = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// A store the trail can be read from: the first database sink.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(PathBuf),
    /// The connection string, and how long a query may take.
    Postgres(String, std::time::Duration),
}

impl Store {
    /// The first SQLite or PostgreSQL sink of `settings`.
    pub fn of(settings: &AuditSettings, base_dir: &std::path::Path) -> Result<Self, String> {
        for sink in &settings.sinks {
            match sink {
                SinkConfig::Sqlite(sqlite) => return Ok(Self::Sqlite(base_dir.join(&sqlite.path))),
                SinkConfig::Postgres(postgres) => {
                    let url = postgres.url.read(base_dir)?;
                    return Ok(Self::Postgres(url, settings.timeout));
                }
                SinkConfig::Jsonl(_) | SinkConfig::Kafka(_) => {}
            }
        }
        Err("no SQLite or PostgreSQL audit sink is configured to read from".into())
    }

    pub async fn query(&self, filter: &Filter) -> Result<Page, String> {
        match self {
            Self::Sqlite(path) => {
                let (path, filter) = (path.clone(), filter.clone());
                tokio::task::spawn_blocking(move || super::sqlite::query(&path, &filter))
                    .await
                    .map_err(|e| e.to_string())?
            }
            Self::Postgres(url, timeout) => super::postgres::query(url, filter, *timeout).await,
        }
    }
}
