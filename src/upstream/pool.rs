//! The upstream servers over the life of the process: a catalog version's
//! set of servers ([`Upstreams`]) is built from the one before it, so a
//! reload reconnects only what changed.
//!
//! A server whose definition (transport, address, command, timeout,
//! credential provider) is unchanged keeps its supervisor, its session and
//! its subscriptions; only its credential provider, its list of catalog
//! tools and where it caches its definitions (`redis:`) are replaced. A server that is new is connected; one that is gone
//! or changed is closed once no request in flight can still reach it (a
//! changed one hands its resource subscriptions to its successor, whose
//! session renews them).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::client::UpstreamClient;
use super::connect;
use super::http_client::CredentialedClient;
use super::{Connection, Upstream, Upstreams, definitions, supervisor};
use crate::catalog::{Catalog, ServerId};
use crate::credentials::Credentials;
use crate::shared::Shared;

/// How long past its timeout a retired server may still serve a request
/// that started before the reload.
const RETIRE_GRACE: Duration = Duration::from_secs(5);
/// How often a retired server checks whether requests still hold it.
const RETIRE_POLL: Duration = Duration::from_millis(50);

/// Starts and stops the supervisors of upstream servers.
pub struct UpstreamPool {
    shutdown: CancellationToken,
    changes: broadcast::Sender<Arc<str>>,
}

impl Default for UpstreamPool {
    fn default() -> Self {
        let (changes, _) = broadcast::channel(64);
        Self {
            shutdown: CancellationToken::new(),
            changes,
        }
    }
}

impl UpstreamPool {
    /// The servers of `catalog`, reusing those of `previous` whose
    /// definition is unchanged. Returns at once; new connections come up in
    /// the background.
    pub fn reconcile(
        &self,
        previous: &Upstreams,
        catalog: &Catalog,
        credentials: &Credentials,
        shared: Option<&Arc<Shared>>,
    ) -> Upstreams {
        let mut unused: Vec<&Arc<Upstream>> = previous.servers.iter().collect();
        let servers = (catalog.servers().iter().enumerate())
            .map(|(i, spec)| {
                let id = ServerId(i);
                let mut tools: Vec<(Arc<str>, Arc<str>)> = (catalog.tools_of(id))
                    .map(|(public, upstream)| (public.clone(), upstream.clone()))
                    .collect();
                tools.sort();
                let provider = credentials.server(id).clone();
                if let Some(at) = unused.iter().position(|u| u.spec == *spec) {
                    let kept = unused.swap_remove(at);
                    kept.catalog_tools.store(Arc::new(tools));
                    kept.credentials.store(provider);
                    kept.shared.store(shared.cloned());
                    return kept.clone();
                }
                // A server whose definition changed keeps its clients'
                // resource subscriptions: its new session renews them.
                let subscriptions = (unused.iter())
                    .find(|u| u.spec.name == spec.name)
                    .map(|u| u.client.subscriptions.clone())
                    .unwrap_or_default();
                let credentials = Arc::new(ArcSwap::new(provider));
                let upstream = Arc::new(Upstream {
                    spec: spec.clone(),
                    catalog_tools: ArcSwap::from_pointee(tools),
                    state: ArcSwap::from_pointee(Connection::connecting()),
                    first_attempt_done: AtomicBool::new(false),
                    client: UpstreamClient {
                        forward_logs: spec.forward_logs,
                        roots: spec.roots.clone(),
                        initialize_version: connect::initialize_version(spec.protocol),
                        subscriptions,
                        ..UpstreamClient::default()
                    },
                    http: CredentialedClient::new(credentials.clone()),
                    credentials,
                    changes: self.changes.clone(),
                    shared: arc_swap::ArcSwapOption::new(shared.cloned()),
                    heard: tokio::sync::Notify::new(),
                    stop: self.shutdown.child_token(),
                });
                tokio::spawn(definitions::preload(upstream.clone()));
                tokio::spawn(supervisor::supervise(upstream.clone()));
                upstream
            })
            .collect();
        for gone in unused {
            retire(gone.clone());
        }
        Upstreams { servers }
    }

    /// Servers (by name) whose connection or offering changed, as they
    /// change.
    pub fn changes(&self) -> broadcast::Receiver<Arc<str>> {
        self.changes.subscribe()
    }

    /// Stop every supervisor; their sessions (and stdio children) close.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for UpstreamPool {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Close a server no longer in the catalog (or whose definition changed)
/// once no request can reach it: its supervisor and this task are then the
/// only holders, since every catalog version that named it is gone. A
/// request that started before the reload is bounded by the server's
/// timeout, so the wait is too.
fn retire(upstream: Arc<Upstream>) {
    tokio::spawn(async move {
        let deadline = Instant::now() + upstream.spec.timeout + RETIRE_GRACE;
        while Arc::strong_count(&upstream) > 2 && Instant::now() < deadline {
            tokio::time::sleep(RETIRE_POLL).await;
        }
        tracing::info!(server = %upstream.spec.name, "upstream server retired");
        upstream.stop.cancel();
    });
}
