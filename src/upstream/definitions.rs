//! The definitions cache: what each server offers (its tools, prompts,
//! resources and templates, as listed), kept in Redis by the server's
//! logical name whenever a replica lists them. A replica whose session
//! with a server is still coming up (a fresh replica, a reconnect) serves
//! the cached definitions meanwhile, so `tools/list` answers before its
//! own handshake has finished; calls still wait for the session. Its own
//! listing replaces them as soon as it has one.

use std::sync::Arc;
use std::time::Duration;

use super::{Connection, Health, Offered, Upstream};

/// How long cached definitions are kept without a replica listing anew.
const KEEP: Duration = Duration::from_secs(24 * 3600);

fn key(upstream: &Upstream) -> String {
    format!("definitions:{}", upstream.spec.name)
}

/// Keep `offered` as the server's definitions for every replica.
pub(super) fn store(upstream: &Upstream, offered: &Offered) {
    let Some(shared) = upstream.shared.load_full() else {
        return;
    };
    let Ok(text) = serde_json::to_string(offered) else {
        return;
    };
    let key = key(upstream);
    tokio::spawn(async move {
        if let Err(error) = shared.set(&key, &text, KEEP).await {
            tracing::debug!(%error, "definitions not cached");
        }
    });
}

/// Serve the cached definitions while the server's first session is
/// still coming up.
pub(super) async fn preload(upstream: Arc<Upstream>) {
    let Some(shared) = upstream.shared.load_full() else {
        return;
    };
    let cached = match shared.get(&key(&upstream)).await {
        Ok(Some(text)) => serde_json::from_str::<Offered>(&text)
            .ok()
            .map(Offered::compiled),
        _ => None,
    };
    let Some(cached) = cached.map(Arc::new) else {
        return;
    };
    let mut preloaded = false;
    upstream.state.rcu(|current| {
        // Only a session that is still coming up, with nothing of its own.
        let waiting = current.health == Health::Connecting && current.peer.is_none();
        preloaded = waiting;
        match waiting {
            true => Arc::new(Connection {
                health: current.health,
                peer: None,
                offered: cached.clone(),
                last_error: current.last_error,
                lost: current.lost.clone(),
            }),
            false => current.clone(),
        }
    });
    if preloaded {
        tracing::info!(server = %upstream.spec.name, "serving cached definitions while connecting");
        let _ = upstream.changes.send(upstream.spec.name.clone());
    }
}
