//! Who to tell when a server's offering changes (it connects, goes down, or
//! says its lists changed) or a catalog reload changes what a role sees:
//! every initialize-based session and every
//! 2026-07-28 `subscriptions/listen` stream whose role sees something of that
//! server gets the matching `list_changed` notifications, and no other does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::service::{Peer, SubscriptionSink};
use tokio::sync::broadcast::error::RecvError;

use crate::catalog::Reach;
use crate::live::{Live, Swap};

/// How long one client may take to accept a notification.
const NOTIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where a client hears of changes.
#[derive(Clone)]
enum Channel {
    /// A session of an initialize-based revision.
    Session(Peer<RoleServer>),
    /// A `subscriptions/listen` stream (2026-07-28), which applies the
    /// filter the client asked for.
    Listen(SubscriptionSink),
}

struct Listener {
    id: u64,
    role: Arc<str>,
    /// The `Mcp-Session-Id` of a session.
    session: Option<Arc<str>>,
    channel: Channel,
}

impl Listener {
    fn closed(&self) -> bool {
        match &self.channel {
            Channel::Session(peer) => peer.is_transport_closed(),
            Channel::Listen(_) => false,
        }
    }
}

/// The clients listening for changes.
#[derive(Clone, Default)]
pub struct Sessions {
    live: Arc<Mutex<Vec<Listener>>>,
    next: Arc<AtomicU64>,
}

impl Sessions {
    /// A session that finished its handshake.
    pub fn add_session(&self, role: Arc<str>, session: Option<Arc<str>>, peer: Peer<RoleServer>) {
        self.add(role, session, Channel::Session(peer));
    }

    /// A `subscriptions/listen` stream; it ends with [`Self::remove`].
    pub fn add_listen(&self, role: Arc<str>, sink: SubscriptionSink) -> u64 {
        self.add(role, None, Channel::Listen(sink))
    }

    /// The open session whose `Mcp-Session-Id` is `session`.
    pub fn peer_of(&self, session: &str) -> Option<Peer<RoleServer>> {
        let live = self.lock();
        let listener =
            (live.iter().rev()).find(|l| l.session.as_deref() == Some(session) && !l.closed())?;
        match &listener.channel {
            Channel::Session(peer) => Some(peer.clone()),
            Channel::Listen(_) => None,
        }
    }

    pub fn remove(&self, id: u64) {
        self.lock().retain(|listener| listener.id != id);
    }

    fn add(&self, role: Arc<str>, session: Option<Arc<str>>, channel: Channel) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut live = self.lock();
        live.retain(|listener| !listener.closed());
        live.push(Listener {
            id,
            role,
            session,
            channel,
        });
        id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Listener>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Until the process ends: turn upstream changes and catalog reloads
    /// into notifications.
    pub async fn notify_changes(self, live: Arc<Live>) {
        let mut changes = live.pool().changes();
        let mut swaps = live.swaps();
        loop {
            // What each listener's role now sees differently.
            let reach: Box<dyn Fn(&str) -> Reach + Send> = tokio::select! {
                server = changes.recv() => match server {
                    Ok(server) => {
                        let snapshot = live.current();
                        tracing::debug!(%server, "upstream offering changed");
                        Box::new(move |role| match snapshot.catalog.server_id(&server) {
                            Some(id) => snapshot.catalog.role_reach(role, id),
                            None => Reach::default(),
                        })
                    }
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                },
                swap = swaps.recv() => match swap {
                    Ok(Swap { before, now }) => {
                        let policy = now.discovery_policy_changed(&before);
                        Box::new(move |role| {
                            let mut reach = now.catalog.view_changes(&before.catalog, role);
                            reach.tools |= policy;
                            reach.prompts |= policy;
                            reach
                        })
                    }
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                },
            };
            let targets: Vec<_> = {
                let mut live = self.lock();
                live.retain(|listener| !listener.closed());
                live.iter()
                    .map(|l| (reach(&l.role), l.channel.clone()))
                    .filter(|(reach, _)| *reach != Reach::default())
                    .collect()
            };
            for (reach, channel) in targets {
                // One slow client must not hold up the others.
                tokio::spawn(notify(reach, channel));
            }
        }
    }
}

/// Tell one client which of its lists changed.
async fn notify(reach: Reach, channel: Channel) {
    let sent = async {
        let lists = [
            (reach.tools, List::Tools),
            (reach.prompts, List::Prompts),
            (reach.resources, List::Resources),
        ];
        for list in lists
            .into_iter()
            .filter(|(reaches, _)| *reaches)
            .map(|(_, list)| list)
        {
            let result = match &channel {
                Channel::Session(peer) => list.tell_session(peer).await.map_err(|e| e.to_string()),
                Channel::Listen(sink) => list.tell_listener(sink).await.map_err(|e| e.to_string()),
            };
            if let Err(error) = result {
                tracing::debug!(%error, "cannot notify a client");
            }
        }
    };
    if tokio::time::timeout(NOTIFY_TIMEOUT, sent).await.is_err() {
        tracing::debug!("notifying a client timed out");
    }
}

#[derive(Clone, Copy)]
enum List {
    Tools,
    Prompts,
    Resources,
}

impl List {
    async fn tell_session(
        self,
        peer: &Peer<RoleServer>,
    ) -> Result<(), rmcp::service::ServiceError> {
        match self {
            Self::Tools => peer.notify_tool_list_changed().await,
            Self::Prompts => peer.notify_prompt_list_changed().await,
            Self::Resources => peer.notify_resource_list_changed().await,
        }
    }

    async fn tell_listener(
        self,
        sink: &SubscriptionSink,
    ) -> Result<(), rmcp::service::SubscriptionSendError> {
        match self {
            Self::Tools => sink.notify_tool_list_changed().await,
            Self::Prompts => sink.notify_prompt_list_changed().await,
            Self::Resources => sink.notify_resource_list_changed().await,
        }
    }
}
