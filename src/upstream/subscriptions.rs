//! Resource subscriptions, shared per server: the first client to subscribe
//! to a URI subscribes upstream, the last to leave unsubscribes, and every
//! `notifications/resources/updated` from the server reaches each client
//! subscribed to that URI, and only those.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::model::ResourceUpdatedNotificationParam;
use tokio::sync::Notify;

/// Delivers an update to one client session.
pub type UpdateSink = Arc<dyn Fn(ResourceUpdatedNotificationParam) + Send + Sync>;

/// One client session's interest in a URI.
#[derive(Clone)]
pub struct Subscriber {
    /// Distinguishes sessions, so one can leave without the others.
    pub session: u64,
    pub deliver: UpdateSink,
}

#[derive(Default)]
pub struct Subscriptions {
    by_uri: Mutex<HashMap<String, Vec<Subscriber>>>,
    /// Woken when a URI gains its first subscriber or loses its last.
    changed: Notify,
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
            self.changed.notify_one();
        }
        emptied
    }

    /// Until the set of subscribed URIs changes.
    pub async fn changed(&self) {
        self.changed.notified().await;
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
