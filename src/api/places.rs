//! Places counted per key, each capped: connections per client address,
//! open streams per agent. A place is given back when it is dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// How many places each key holds now.
pub struct Places<K>(Mutex<HashMap<K, usize>>);

impl<K> Default for Places<K> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<K: Hash + Eq + Clone> Places<K> {
    /// One more place for `key`, if it holds fewer than `cap`.
    pub fn admit(self: &Arc<Self>, key: &K, cap: usize) -> Option<Place<K>> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.entry(key.clone()).or_default();
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Place(self.clone(), key.clone()))
    }
}

/// One place of a key.
pub struct Place<K: Hash + Eq>(Arc<Places<K>>, K);

impl<K: Hash + Eq> Drop for Place<K> {
    fn drop(&mut self) {
        let mut held = (self.0).0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&self.1) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_cap_and_gets_places_back() {
        let places: Arc<Places<&str>> = Arc::default();
        let first = places.admit(&"a", 2).unwrap();
        let _second = places.admit(&"a", 2).unwrap();
        assert!(places.admit(&"a", 2).is_none());
        assert!(places.admit(&"b", 2).is_some());
        drop(first);
        assert!(places.admit(&"a", 2).is_some());
    }
}
