//! Resource subscriptions, shared per server: the first client to subscribe
//! to a URI subscribes upstream, the last to leave unsubscribes, and every
//! `notifications/resources/updated` from the server reaches each client
//! subscribed to that URI, and only those.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rmcp::model::ResourceUpdatedNotificationParam;
use tokio::sync::{Notify, watch};

/// Delivers an update to one client session.
pub type UpdateSink = Arc<dyn Fn(ResourceUpdatedNotificationParam) + Send + Sync>;

/// One client session's interest in a URI.
#[derive(Clone)]
pub struct Subscriber {
    /// Distinguishes sessions, so one can leave without the others.
    pub session: u64,
    pub deliver: UpdateSink,
}

pub struct Subscriptions {
    by_uri: Mutex<HashMap<String, Vec<Subscriber>>>,
    /// Woken when a URI gains its first subscriber or loses its last...
    changed: Notify,
    /// ...which also counts up this generation of the set of URIs,
    generation: AtomicU64,
    /// and the newest generation a 2026-07-28 server has acknowledged on
    /// its listen stream (see [`Subscriptions::acknowledged`]).
    acknowledged: watch::Sender<u64>,
}

impl Default for Subscriptions {
    fn default() -> Self {
        Self {
            by_uri: Mutex::default(),
            changed: Notify::new(),
            generation: AtomicU64::new(0),
            acknowledged: watch::Sender::new(0),
        }
    }
}

impl Subscriptions {
    /// Add `subscriber`; true when it is the URI's first (subscribe upstream).
    pub fn add(&self, uri: &str, subscriber: Subscriber) -> bool {
        let mut by_uri = self.lock();
        let list = by_uri.entry(uri.to_string()).or_default();
        list.retain(|s| s.session != subscriber.session);
        list.push(subscriber);
        let first = list.len() == 1;
        if first {
            self.generation.fetch_add(1, Ordering::AcqRel);
            self.changed.notify_one();
        }
        first
    }

    /// Remove `session`; true when no one is left (unsubscribe upstream).
    pub fn remove(&self, uri: &str, session: u64) -> bool {
        let mut by_uri = self.lock();
        let Some(list) = by_uri.get_mut(uri) else {
            return false;
        };
        let before = list.len();
        list.retain(|s| s.session != session);
        let emptied = before > 0 && list.is_empty();
        if list.is_empty() {
            by_uri.remove(uri);
        }
        if emptied {
            self.generation.fetch_add(1, Ordering::AcqRel);
            self.changed.notify_one();
        }
        emptied
    }

    /// Until the set of subscribed URIs changes.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The current generation of the set of URIs: read it before the URIs.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The server listens for the URIs of `generation` (or newer); `None`
    /// says it never will (it cannot tell of updates), so no one waits.
    pub fn acknowledge(&self, generation: Option<u64>) {
        let generation = generation.unwrap_or(u64::MAX);
        self.acknowledged.send_if_modified(|acked| {
            let newer = generation > *acked;
            if newer {
                *acked = generation;
            }
            newer
        });
    }

    /// Until the server listens for the URIs as they are now: a
    /// subscription through a listen stream is in place when this returns.
    pub async fn acknowledged(&self) {
        let wanted = self.generation();
        let mut acked = self.acknowledged.subscribe();
        let _ = acked.wait_for(|acked| *acked >= wanted).await;
    }

    /// Every URI someone is subscribed to: to subscribe again on a new
    /// session with the server.
    pub fn uris(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Deliver an update from the server to the URI's subscribers.
    pub fn deliver(&self, update: ResourceUpdatedNotificationParam) {
        let subscribers = self.lock().get(&update.uri).cloned().unwrap_or_default();
        for subscriber in subscribers {
            (subscriber.deliver)(update.clone());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Subscriber>>> {
        self.by_uri
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn subscriber(session: u64) -> Subscriber {
        Subscriber {
            session,
            deliver: Arc::new(|_| {}),
        }
    }

    #[tokio::test]
    async fn a_subscription_is_in_place_once_the_server_acknowledged_its_generation() {
        let subscriptions = Subscriptions::default();
        let before = subscriptions.generation();
        assert!(subscriptions.add("test://a", subscriber(1)));
        assert!(
            !subscriptions.add("test://a", subscriber(2)),
            "not the first"
        );
        assert_eq!(subscriptions.generation(), before + 1);
        let waiting = tokio::time::timeout(Duration::from_millis(50), subscriptions.acknowledged());
        assert!(waiting.await.is_err(), "nothing acknowledged yet");
        // An older generation does not do; the current one does.
        subscriptions.acknowledge(Some(before));
        let waiting = tokio::time::timeout(Duration::from_millis(50), subscriptions.acknowledged());
        assert!(waiting.await.is_err());
        subscriptions.acknowledge(Some(before + 1));
        subscriptions.acknowledged().await;
        // A server that can never tell of updates lets no one wait.
        assert!(!subscriptions.remove("test://a", 1), "one is left");
        assert!(subscriptions.remove("test://a", 2), "the last left");
        subscriptions.acknowledge(None);
        subscriptions.acknowledged().await;
    }
}
