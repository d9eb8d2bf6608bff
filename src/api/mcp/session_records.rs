//! Sessions that outlive the replica that opened them.
//!
//! With `redis:` in the catalog, each initialize-era session is kept in
//! Redis as a record under `session:<id>`: the agent that opened it and
//! its `initialize` parameters. A replica that gets a request for a
//! session it does not hold checks the record's agent against the caller
//! (another agent's id gets the answer an unknown id gets) and `rmcp`
//! restores the session from it: it replays the handshake, so the session
//! goes on with the revision and capabilities the client opened it with.
//!
//! Why a store, not a self-contained encrypted session id (as
//! agentgateway and Envoy AI Gateway do): a `DELETE` ends the session on
//! every replica at once (the record goes, and the others are told), an
//! idle session expires everywhere with the record's time to live, no
//! session key has to be shared and rotated across replicas, and the id
//! stays short. The price is one Redis read the first time a replica sees
//! a session, and one write per `initialize`. Without Redis each session
//! lives on the replica that opened it, as before.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::InitializeRequestParams;
use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::live::Live;
use crate::shared::{Event, Shared};

/// Whom a session answers to: the agent that opened it, at the endpoint
/// it opened it on (`/mcp` or `/mcp/<endpoint>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub agent: Arc<str>,
    #[serde(default)]
    pub endpoint: Option<Arc<str>>,
}

/// One session as every replica may restore it.
#[derive(Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    owner: Owner,
    initialize: InitializeRequestParams,
}

/// The session records, in the Redis of the catalog in force.
pub struct SessionRecords {
    live: Arc<Live>,
    /// How long a record outlives the session's last request.
    idle: Duration,
}

fn key(session: &str) -> String {
    format!("session:{session}")
}

impl SessionRecords {
    pub fn new(live: Arc<Live>, idle: Duration) -> Self {
        Self { live, idle }
    }

    fn shared(&self) -> Option<Arc<Shared>> {
        self.live.current().shared.clone()
    }

    /// How often a replica renews the record of a session it serves.
    pub fn renew_every(&self) -> Duration {
        self.idle / 4
    }

    /// Keep the session `id` that `owner` opened with `initialize` (the
    /// request's params) for every replica. Awaited before the client gets
    /// its session id, so its next request finds the record wherever it
    /// lands.
    pub async fn keep(&self, id: &str, owner: &Owner, initialize: Option<&Value>) {
        let Some(shared) = self.shared() else {
            return;
        };
        let Some(initialize) = initialize.and_then(|p| serde_json::from_value(p.clone()).ok())
        else {
            return;
        };
        let record = Record {
            owner: owner.clone(),
            initialize,
        };
        let Ok(text) = serde_json::to_string(&record) else {
            return;
        };
        if let Err(error) = shared.set(&key(id), &text, self.idle).await {
            tracing::warn!(%error, "session not shared: it continues only on this replica");
        }
    }

    /// The record of a session this replica does not hold, if any replica
    /// kept one (and Redis answers).
    async fn record(&self, id: &str) -> Option<Record> {
        let text = self.shared()?.get(&key(id)).await.ok()??;
        serde_json::from_str(&text).ok()
    }

    /// Whom the session `id` answers to, as its record says.
    pub async fn owner(&self, id: &str) -> Option<Owner> {
        Some(self.record(id).await?.owner)
    }

    /// The session is in use: its record lives another idle period.
    pub fn renew(&self, id: &str) {
        let Some(shared) = self.shared() else {
            return;
        };
        let (key, idle) = (key(id), self.idle);
        tokio::spawn(async move {
            let _ = shared.touch(&key, idle).await;
        });
    }

    /// Tell the other replicas `event`, if there are any to tell.
    pub fn tell_others(&self, event: Event) {
        if let Some(shared) = self.shared() {
            shared.publish(event);
        }
    }
}

/// What `rmcp` asks when a request names a session this replica does not
/// hold, and when a session ends.
#[async_trait::async_trait]
impl SessionStore for SessionRecords {
    async fn load(&self, id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let record = self.record(id).await;
        Ok(record.map(|record| SessionState::new(record.initialize)))
    }

    /// The guard keeps the record itself ([`SessionRecords::keep`]): it
    /// knows the agent, which `rmcp` does not.
    async fn store(&self, _id: &str, _state: &SessionState) -> Result<(), SessionStoreError> {
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), SessionStoreError> {
        if let Some(shared) = self.shared() {
            shared.delete(&key(id)).await?;
        }
        Ok(())
    }
}
