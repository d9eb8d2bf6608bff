//! What this replica and the others tell each other about MCP sessions
//! (over Redis pub/sub, `shared::events`), and which sessions' streams
//! this replica holds.
//!
//! A client opens its session's stream (`GET /mcp`) on whichever replica
//! the balancer picks; what a server sends the session between requests
//! must reach that one. List changes do by themselves: every replica
//! hears of them and notifies the sessions it has. A resource update
//! reaches only the replica whose upstream session subscribed, so that
//! replica tells the others when it does not hold the stream, and the one
//! that does delivers it. A session ended through one replica ends on
//! all, and a client's answer to a request relayed during a call reaches
//! the replica whose call waits for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::response::Response;
use rmcp::model::{ClientJsonRpcMessage, ResourceUpdatedNotificationParam};
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::session_records::SessionRecords;
use super::sessions::Sessions;
use crate::live::Live;
use crate::shared::Event;

pub struct Replicas {
    manager: Arc<LocalSessionManager>,
    sessions: Sessions,
    records: Arc<SessionRecords>,
    /// Session id -> streams of it open here now.
    streams: Mutex<HashMap<Arc<str>, usize>>,
}

impl Replicas {
    pub fn new(
        manager: Arc<LocalSessionManager>,
        sessions: Sessions,
        records: Arc<SessionRecords>,
    ) -> Self {
        Self {
            manager,
            sessions,
            records,
            streams: Mutex::default(),
        }
    }

    pub fn records(&self) -> &SessionRecords {
        &self.records
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, usize>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn holds_stream(&self, session: &str) -> bool {
        self.streams().contains_key(session)
    }

    /// `response`, the stream of `session`: held here until it ends.
    pub fn hold_stream(self: &Arc<Self>, session: &str, response: Response) -> Response {
        let session: Arc<str> = session.into();
        *self.streams().entry(session.clone()).or_default() += 1;
        let held = StreamHeld {
            replicas: self.clone(),
            session,
        };
        response.map(|body| {
            let stream = body.into_data_stream();
            Body::from_stream(futures::StreamExt::map(stream, move |chunk| {
                let _held = &held;
                chunk
            }))
        })
    }

    /// A resource update for `session` was delivered here: if its stream
    /// is elsewhere, tell the replica that holds it.
    pub fn updated_elsewhere(&self, session: &Arc<str>, update: &ResourceUpdatedNotificationParam) {
        if !self.holds_stream(session) {
            let (session, uri) = (session.clone(), update.uri.as_str().into());
            self.records
                .tell_others(Event::ResourceUpdated { session, uri });
        }
    }

    /// Until `shutdown`: act on what the other replicas say about sessions.
    pub async fn follow(self: Arc<Self>, live: Arc<Live>, shutdown: CancellationToken) {
        let mut events = live.peer_events();
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = shutdown.cancelled() => return,
            };
            match event {
                Ok(event) => self.act_on(event).await,
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    }

    async fn act_on(&self, event: Event) {
        match event {
            Event::SessionClosed { session } => {
                if self.manager.has_session(&session).await.unwrap_or(false) {
                    let _ = self.manager.close_session(&session).await;
                }
            }
            Event::ClientAnswer { session, message } => {
                let Ok(message) = serde_json::from_value::<ClientJsonRpcMessage>(message) else {
                    return;
                };
                if self.manager.has_session(&session).await.unwrap_or(false) {
                    let _ = self.manager.accept_message(&session, message).await;
                }
            }
            Event::ResourceUpdated { session, uri } => {
                if self.holds_stream(&session)
                    && let Some(peer) = self.sessions.peer_of(&session)
                {
                    let update = ResourceUpdatedNotificationParam::new(&*uri);
                    tokio::spawn(async move { peer.notify_resource_updated(update).await });
                }
            }
            Event::ListChanged { .. } | Event::Subscribed => {}
        }
    }
}

/// One stream of a session, open here while this lives.
struct StreamHeld {
    replicas: Arc<Replicas>,
    session: Arc<str>,
}

impl Drop for StreamHeld {
    fn drop(&mut self) {
        let mut streams = self.replicas.streams();
        if let Some(count) = streams.get_mut(&self.session) {
            *count -= 1;
            if *count == 0 {
                streams.remove(&self.session);
            }
        }
    }
}
