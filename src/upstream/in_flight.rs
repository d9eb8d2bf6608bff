//! What the calls in flight on one server registered, by a key the server
//! echoes back (a progress token, our request id), for as long as the call
//! runs. Progress routing and request relaying both use it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

/// The lock is held for one map operation at a time.
pub struct InFlight<K, V> {
    entries: Mutex<HashMap<K, V>>,
}

impl<K, V> Default for InFlight<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V> InFlight<K, V> {
    /// Hold `value` under `key` until the returned guard is dropped.
    pub fn register(&self, key: K, value: V) -> Registration<'_, K, V> {
        self.lock().insert(key.clone(), value);
        Registration { map: self, key }
    }

    /// Hold `value` under `key` until the returned guard is dropped, a
    /// guard that may outlive the request (a parked call keeps its routes).
    pub fn register_owned(self: &Arc<Self>, key: K, value: V) -> Owned<K, V> {
        self.lock().insert(key.clone(), value);
        Owned {
            map: self.clone(),
            key,
        }
    }

    /// Look at the registered entries.
    pub fn with<R>(&self, f: impl FnOnce(&HashMap<K, V>) -> R) -> R {
        f(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, V>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Ends a registration when the call ends.
pub struct Registration<'a, K: Eq + Hash + Clone, V> {
    map: &'a InFlight<K, V>,
    key: K,
}

impl<K: Eq + Hash + Clone, V> Drop for Registration<'_, K, V> {
    fn drop(&mut self) {
        self.map.lock().remove(&self.key);
    }
}

/// Ends a registration that may outlive the request when it is dropped.
pub struct Owned<K: Eq + Hash + Clone, V> {
    map: Arc<InFlight<K, V>>,
    key: K,
}

impl<K: Eq + Hash + Clone, V> Drop for Owned<K, V> {
    fn drop(&mut self) {
        self.map.lock().remove(&self.key);
    }
}
