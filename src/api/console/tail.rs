//! The live tail of the audit trail: every record the audit writer
//! finishes, as server-sent events to the console's audit page (its one
//! script appends each as text). Bounded: a viewer that falls behind skips
//! what it missed rather than holding records.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use tokio::sync::broadcast;

use super::{App, session};
use crate::audit::{AuditRecord, Observer};

/// Records waiting for a slow viewer before it skips ahead.
const BACKLOG: usize = 256;

/// An audit observer that hands each record on to the console's viewers.
pub struct ConsoleTail(broadcast::Sender<Arc<str>>);

impl Default for ConsoleTail {
    fn default() -> Self {
        Self(broadcast::channel(BACKLOG).0)
    }
}

impl Observer for ConsoleTail {
    fn observe(&self, record: &AuditRecord) {
        // Nothing is serialized while no one watches.
        if self.0.receiver_count() > 0 {
            let _ = self.0.send(record.to_json().to_string().into());
        }
    }
}

/// `GET /ui/audit/tail`: new records as they are written.
pub async fn tail(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if session(&app, &headers).is_none() {
        return Redirect::to("/ui/").into_response();
    }
    let records = app.tail.0.subscribe();
    let events = futures::stream::unfold(records, |mut records| async move {
        loop {
            match records.recv().await {
                Ok(record) => {
                    return Some((
                        Ok::<_, Infallible>(Event::default().data(&*record)),
                        records,
                    ));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The audit page's one script: append each record of the tail, as text.
pub const SCRIPT: &str = r#"const list = document.getElementById('tail');
if (list) {
  const source = new EventSource('/ui/audit/tail');
  source.onopen = () => { list.dataset.open = 'yes'; };
  source.onmessage = (event) => {
    const r = JSON.parse(event.data);
    const item = document.createElement('li');
    item.textContent = `${r.time} ${r.action} ${r.tool} by ${r.agent_id}: ${r.outcome} (${r.trace_id})`;
    list.prepend(item);
    while (list.children.length > 100) list.lastElementChild.remove();
  };
}
"#;
