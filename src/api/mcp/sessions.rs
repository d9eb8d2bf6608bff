//! Connected MCP sessions, so that when a server's offering changes (it
//! connects, goes down, or says its lists changed) every session whose role
//! sees something of that server gets the matching `list_changed`
//! notifications, and no other session does.

use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::service::Peer;
use tokio::sync::broadcast::error::RecvError;

use crate::catalog::Reach;
use crate::pipeline::Pipeline;

/// How long one session may take to accept a notification.
const NOTIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

struct Session {
    role: Arc<str>,
    peer: Peer<RoleServer>,
}

/// The sessions that completed the initialize handshake.
#[derive(Clone, Default)]
pub struct Sessions {
    live: Arc<Mutex<Vec<Session>>>,
}

impl Sessions {
    pub fn add(&self, role: Arc<str>, peer: Peer<RoleServer>) {
        let mut live = self.lock();
        live.retain(|s| !s.peer.is_transport_closed());
        live.push(Session { role, peer });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Session>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Until the process ends: turn upstream changes into notifications.
    pub async fn notify_changes(self, pipeline: Arc<Pipeline>) {
        let mut changes = pipeline.upstreams().changes();
        loop {
            let server = match changes.recv().await {
                Ok(server) => server,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let targets: Vec<_> = {
                let mut live = self.lock();
                live.retain(|s| !s.peer.is_transport_closed());
                live.iter()
                    .map(|s| {
                        (
                            pipeline.catalog().role_reach(&s.role, server),
                            s.peer.clone(),
                        )
                    })
                    .collect()
            };
            tracing::debug!(
                server = server.0,
                sessions = targets.len(),
                "upstream offering changed"
            );
            for (reach, peer) in targets {
                // One slow client must not hold up the others.
                tokio::spawn(notify(reach, peer));
            }
        }
    }
}

/// Tell one session which of its lists changed.
async fn notify(reach: Reach, peer: Peer<RoleServer>) {
    let sent = async {
        if reach.tools {
            peer.notify_tool_list_changed().await?;
        }
        if reach.prompts {
            peer.notify_prompt_list_changed().await?;
        }
        if reach.resources {
            peer.notify_resource_list_changed().await?;
        }
        Ok::<_, rmcp::service::ServiceError>(())
    };
    match tokio::time::timeout(NOTIFY_TIMEOUT, sent).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "cannot notify a session"),
        Err(_) => tracing::debug!("notifying a session timed out"),
    }
}
