//! Keeping the catalog in step with what exposed servers offer: a server
//! with an `expose` rule that lists a new tool (after its `list_changed`,
//! a reconnect, or another replica hearing of it) gets the catalog in force
//! assembled again with the new exposure, and put in force like a reload,
//! so every session whose view changed is told.

use std::sync::{Arc, Weak};

use tokio::sync::broadcast::error::RecvError;

use super::{Live, Parts, Swap, assemble};
use crate::catalog::Catalog;
use crate::config::CatalogFile;
use crate::config::expose::Exposure;
use crate::config::grants::Kind;
use crate::upstream::Upstreams;

/// What `file`'s rules expose of what `upstreams` (of `catalog`) offer
/// now; `before`'s names stay with the servers that had them.
pub(super) fn exposure(
    file: &CatalogFile,
    catalog: &Catalog,
    upstreams: &Upstreams,
    before: Option<&Exposure>,
) -> Exposure {
    let offered = |server: &str, kind: Kind| {
        let Some(id) = catalog.server_id(server) else {
            return Vec::new();
        };
        let offered = upstreams.offered(id);
        match kind {
            Kind::Prompts => offered.prompts.keys().cloned().collect(),
            _ => offered.tools.keys().cloned().collect(),
        }
    };
    Exposure::of(file, offered, before.unwrap_or(&Exposure::default()))
}

impl Live {
    /// Put the version in force again if what its servers offer now
    /// changes what they expose.
    pub(crate) async fn expose_again(self: &Arc<Self>) {
        let _one = self.reloading.lock().await;
        let before = self.current();
        let now = exposure(
            &before.file,
            &before.catalog,
            &before.upstreams,
            Some(&before.exposure),
        );
        if now == before.exposure {
            return;
        }
        let parts = Parts::of(&before);
        let now = Arc::new(assemble(parts, Some(&before), &self.pool, &self.peers));
        report(&before.exposure, &now.exposure);
        self.current.store(now.clone());
        let _ = self.swaps.send(Swap { before, now });
    }
}

/// Until `live` is dropped: expose again whenever a server with an
/// `expose` rule changes its offering.
pub(super) async fn follow_offerings(live: Weak<Live>) {
    let Some(mut changes) = live.upgrade().map(|live| live.pool().changes()) else {
        return;
    };
    loop {
        let exposing = match changes.recv().await {
            Ok(server) => live.upgrade().is_some_and(|live| {
                let current = live.current();
                (current.file.servers.get(&server)).is_some_and(|s| s.expose.is_some())
            }),
            Err(RecvError::Lagged(_)) => true,
            Err(RecvError::Closed) => return,
        };
        match live.upgrade() {
            Some(live) if exposing => live.expose_again().await,
            Some(_) => {}
            None => return,
        }
    }
}

/// Log what changed between two exposures: every name newly held back (a
/// warning: an operator must act), and how many are exposed.
pub(super) fn report(before: &Exposure, now: &Exposure) {
    for held in now.held.iter().filter(|h| !before.held.contains(h)) {
        tracing::warn!(
            kind = held.kind,
            server = %held.server,
            upstream_name = %held.upstream_name,
            name = %held.name,
            reason = %held.reason,
            "an exposed name is held back"
        );
    }
    if before.tools != now.tools || before.prompts != now.prompts || before.held != now.held {
        let (tools, prompts, held) = (now.tools.len(), now.prompts.len(), now.held.len());
        tracing::info!(tools, prompts, held, "exposed tools and prompts");
    }
}
