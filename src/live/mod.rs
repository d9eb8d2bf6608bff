//! The catalog in force, and its reloading.
//!
//! Everything a request decides with (the compiled catalog, its policy,
//! the identity issuers, the credential providers, the upstream servers) is
//! one immutable [`Snapshot`] behind an atomic pointer. A request takes the
//! snapshot once, at its start, and finishes on it: no request ever sees
//! half of one version and half of another.
//!
//! A reload ([`Live::reload`], run by the watcher in [`watch`] when a file
//! changes and on SIGHUP) takes the same path as `check` ([`compile`]),
//! builds a new snapshot from the one in force (keeping unchanged servers'
//! sessions), and swaps it in. A version that does not load, validate or
//! compile, or whose policy tests fail, never replaces the one in force:
//! the error is logged and shown in `/readyz` until a good version arrives.
//!
//! A catalog kept in DynamoDB ([`mirror`]) is written out as files and
//! served the same way.

mod approve;
pub mod compile;
mod expose;
pub mod items;
pub mod mirror;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde::Serialize;
use sha2::Digest;
use tokio::sync::broadcast;

use crate::catalog::Catalog;
use crate::config::expose::{Exposure, Held};
use crate::config::{AuditSettings, CatalogFile, RedisConfig, TelemetrySettings};
use crate::credentials::{Credentials, Signer};
use crate::guardrails::pins::Pinning;
use crate::identity::{Authenticator, Caller, IdentityError, Presented};
use crate::policy::Policies;
use crate::router::{Breakers, Gates, Limits};
use crate::shared::{Event, Shared};
use crate::upstream::{UpstreamPool, Upstreams};
use compile::{Compiled, LoadError};

pub use approve::ApproveError;
pub use watch::watch;

/// One catalog version, compiled, with everything built from it.
pub struct Snapshot {
    /// A short content hash of the catalog, its policy files and its
    /// secrets (as digests): what each audit record names.
    pub version: Arc<str>,
    pub loaded_at: SystemTime,
    /// The catalog file with `exposure` applied, compiled.
    pub catalog: Catalog,
    /// What the servers' `expose` rules publish of what they offer now.
    pub exposure: Exposure,
    pub policies: Arc<Policies>,
    pub identity: Arc<Authenticator>,
    pub credentials: Arc<Credentials>,
    pub upstreams: Upstreams,
    /// The rate limits' buckets.
    pub limits: Limits,
    /// The servers' circuit breakers.
    pub breakers: Breakers,
    /// The servers' concurrency limits.
    pub gates: Gates,
    /// What replicas share through Redis, if the catalog says where.
    pub shared: Option<Arc<Shared>>,
    policy_digest: [u8; 32],
    /// The catalog's sections only a restart applies, as this version has
    /// them.
    restart_only: RestartOnly,
    /// Every file this version was read from.
    files: Vec<PathBuf>,
    /// The catalog file as read, before any exposure, and its directory.
    file: Arc<CatalogFile>,
    base_dir: PathBuf,
}

impl Snapshot {
    /// Who presented what: a bearer credential checked against this
    /// version (its agents, its issuers), or a caller a front door already
    /// verified for this HTTP request.
    pub async fn authenticate(&self, who: Presented<'_>) -> Result<Caller, IdentityError> {
        match who {
            Presented::Bearer(token) => self.identity.authenticate(&self.catalog, token).await,
            Presented::Verified(caller) => Ok(caller.clone()),
        }
    }

    /// Whether the policy changed from `before` in a way that may change
    /// what discovery shows (a `visible` rule, then or now).
    pub fn discovery_policy_changed(&self, before: &Snapshot) -> bool {
        self.policy_digest != before.policy_digest
            && (self.policies.filters_discovery() || before.policies.filters_discovery())
    }
}

/// The sections the listener, the audit trail, span export and the
/// signing key are set up from once, at start.
#[derive(PartialEq)]
pub struct RestartOnly {
    pub http: crate::config::HttpSettings,
    pub credentials: crate::config::CredentialSettings,
    pub audit: AuditSettings,
    pub telemetry: TelemetrySettings,
}

impl RestartOnly {
    fn of(file: &CatalogFile) -> Self {
        Self {
            http: file.http.clone(),
            credentials: file.credentials.clone(),
            audit: file.audit.clone(),
            telemetry: file.telemetry.clone(),
        }
    }

    /// The names of the sections that differ from `started`.
    fn differing(&self, started: &RestartOnly) -> Vec<&'static str> {
        [
            ("http", self.http != started.http),
            ("credentials", self.credentials != started.credentials),
            ("audit", self.audit != started.audit),
            ("telemetry", self.telemetry != started.telemetry),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect()
    }
}

/// A reload that put a new version in force: the version before and the
/// one now.
#[derive(Clone)]
pub struct Swap {
    pub before: Arc<Snapshot>,
    pub now: Arc<Snapshot>,
}

/// What `/readyz` says about the catalog.
#[derive(Debug, Clone, Serialize)]
pub struct CatalogStatus {
    pub loaded: bool,
    pub environment: Arc<str>,
    pub version: Arc<str>,
    /// When the version in force was loaded (RFC 3339).
    pub loaded_at: String,
    /// Why the last reload was refused, until a good version arrives.
    pub reload_error: Option<Arc<str>>,
    /// Sections changed since start that only a restart applies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restart_required: Vec<&'static str>,
    /// Tools and prompts a server's `expose` rule would publish but that
    /// are held back (an invalid name, or one two servers would give).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<Held>,
}

/// The catalog in force over the life of the process.
pub struct Live {
    current: ArcSwap<Snapshot>,
    /// The catalog file, and the signing key file given on the command line.
    path: PathBuf,
    key_file: Option<PathBuf>,
    signer: Signer,
    pool: UpstreamPool,
    /// The restart-only sections as the process started with them.
    started: RestartOnly,
    reload_error: ArcSwap<Option<Arc<str>>>,
    /// The files a refused version names: watched too, until it is fixed.
    refused_files: ArcSwap<Vec<PathBuf>>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    swaps: broadcast::Sender<Swap>,
    /// What the other replicas tell this one, through whichever store is
    /// in force.
    peers: broadcast::Sender<Event>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl Live {
    /// Load the catalog at `path` and connect its servers. At start a
    /// catalog that does not load is an error: there is no older one.
    /// `jwks_url` is where this process publishes its keys.
    pub fn start(
        path: &Path,
        key_file: Option<PathBuf>,
        jwks_url: String,
    ) -> Result<Arc<Self>, StartError> {
        // Absolute, so the watcher's events name the same paths.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let path = path.as_path();
        let compiled = Compiled::load(path, key_file.as_deref())?;
        let signer = Signer::open(&compiled.catalog, &compiled.base_dir, jwks_url)?;
        let pool = UpstreamPool::default();
        let started = RestartOnly::of(&compiled.file);
        let credentials = open_credentials(&compiled, &signer, None)?;
        let version = version_of(&compiled, &credentials);
        let (peers, _) = broadcast::channel(256);
        let parts = Parts::read(version, compiled, credentials);
        let snapshot = assemble(parts, None, &pool, &peers);
        let (swaps, _) = broadcast::channel(16);
        let live = Arc::new(Self {
            current: ArcSwap::from_pointee(snapshot),
            path: path.to_path_buf(),
            key_file,
            signer,
            pool,
            started,
            reload_error: ArcSwap::from_pointee(None),
            refused_files: ArcSwap::from_pointee(Vec::new()),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            swaps,
            peers,
            reloading: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(relist_what_peers_heard(Arc::downgrade(&live)));
        tokio::spawn(expose::follow_offerings(Arc::downgrade(&live)));
        Ok(live)
    }

    /// The version in force. A request takes it once and keeps it.
    pub fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The sections set up once, as the process started with them.
    pub fn started(&self) -> &RestartOnly {
        &self.started
    }

    /// The catalog's directory: relative paths in it are relative to this.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    pub fn pool(&self) -> &UpstreamPool {
        &self.pool
    }

    /// Versions put in force, as they are.
    pub fn swaps(&self) -> broadcast::Receiver<Swap> {
        self.swaps.subscribe()
    }

    /// What the other replicas tell this one, as they do.
    pub fn peer_events(&self) -> broadcast::Receiver<Event> {
        self.peers.subscribe()
    }

    /// Reloads that put a new version in force, and reloads refused.
    pub fn reload_counts(&self) -> (u64, u64) {
        (
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
        )
    }

    pub fn status(&self) -> CatalogStatus {
        let current = self.current();
        CatalogStatus {
            loaded: true,
            environment: current.catalog.environment.clone(),
            version: current.version.clone(),
            loaded_at: humantime_serde::re::humantime::format_rfc3339_millis(current.loaded_at)
                .to_string(),
            reload_error: (**self.reload_error.load()).clone(),
            restart_required: current.restart_only.differing(&self.started),
            held_back: current.exposure.held.clone(),
        }
    }

    /// Load the catalog again and, if it loads and differs from the version
    /// in force, put it in force. Returns the new version, or `None` when
    /// nothing changed.
    pub async fn reload(self: &Arc<Self>) -> Result<Option<Arc<str>>, Arc<str>> {
        let _one = self.reloading.lock().await;
        let before = self.current();
        let live = self.clone();
        let previous = before.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            let compiled = Compiled::load(&live.path, live.key_file.as_deref())?;
            let credentials = open_credentials(&compiled, &live.signer, Some(&previous))?;
            Ok::<_, LoadError>((compiled, credentials))
        })
        .await
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
        let (compiled, credentials) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => {
                let text: Arc<str> = error.to_string().into();
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                let repeated = self.reload_error.load().as_deref() == Some(&*text);
                if !repeated {
                    tracing::error!(%error, version = %before.version, "catalog reload refused; the version in force stays");
                }
                self.reload_error.store(Arc::new(Some(text.clone())));
                let path = self.path.clone();
                let named = tokio::task::spawn_blocking(move || compile::files_named_by(&path));
                self.refused_files
                    .store(Arc::new(named.await.unwrap_or_default()));
                return Err(text);
            }
        };
        self.reload_error.store(Arc::new(None));
        self.refused_files.store(Arc::new(Vec::new()));
        let version = version_of(&compiled, &credentials);
        if version == before.version {
            return Ok(None);
        }
        let parts = Parts::read(version, compiled, credentials);
        let now = Arc::new(assemble(parts, Some(&before), &self.pool, &self.peers));
        let pending = now.restart_only.differing(&before.restart_only);
        if !pending.is_empty() {
            tracing::warn!(sections = ?pending, "changed catalog sections take effect at the next restart");
        }
        expose::report(&before.exposure, &now.exposure);
        self.current.store(now.clone());
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
        tracing::info!(version = %now.version, before = %before.version, servers = now.catalog.servers().len(), "catalog reloaded");
        let version = now.version.clone();
        let _ = self.swaps.send(Swap { before, now });
        Ok(Some(version))
    }

    /// The files to watch: those the version in force was read from, and
    /// those a refused version names.
    fn files(&self) -> Vec<PathBuf> {
        let mut files = self.current().files.clone();
        files.extend(self.refused_files.load().iter().cloned());
        files.sort();
        files.dedup();
        files
    }
}

/// Until `live` is dropped: list a server again when another replica
/// heard it say its lists changed (this replica's own sessions then hear
/// of it as from its own upstream session), and every server when it
/// starts hearing the others again.
async fn relist_what_peers_heard(live: std::sync::Weak<Live>) {
    let Some(mut events) = live.upgrade().map(|live| live.peer_events()) else {
        return;
    };
    loop {
        match events.recv().await {
            Ok(Event::ListChanged { server }) => match live.upgrade() {
                Some(live) => live.current().upstreams.relist(&server),
                None => return,
            },
            // Changes sent while this replica was not subscribed are lost:
            // list every server again.
            Ok(Event::Subscribed) => match live.upgrade() {
                Some(live) => live.current().upstreams.relist_all(),
                None => return,
            },
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Why the control plane could not start on its catalog.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Key(#[from] crate::credentials::KeyError),
}

fn open_credentials(
    compiled: &Compiled,
    signer: &Signer,
    previous: Option<&Snapshot>,
) -> Result<Credentials, LoadError> {
    Credentials::open(
        &compiled.catalog,
        &compiled.base_dir,
        signer,
        previous.map(|p| &*p.credentials),
    )
    .map_err(|error| LoadError::Credentials {
        file: compiled.files[0].clone(),
        error,
    })
}

/// The short content hash of a version: its catalog and policy files, and
/// the digests of its secrets.
fn version_of(compiled: &Compiled, credentials: &Credentials) -> Arc<str> {
    let mut digest = compiled.digest.clone();
    for secret in credentials.secret_digests() {
        digest.update(secret);
    }
    hex::encode(&digest.finalize()[..6]).into()
}

/// What a snapshot is assembled from: a version just read, or the one in
/// force again (when what its servers offer changes what they expose).
struct Parts {
    version: Arc<str>,
    loaded_at: SystemTime,
    file: Arc<CatalogFile>,
    /// `file` compiled as it is (without exposure).
    catalog: Catalog,
    base_dir: PathBuf,
    policies: Arc<Policies>,
    policy_digest: [u8; 32],
    files: Vec<PathBuf>,
    credentials: Arc<Credentials>,
    pinning: Option<Arc<Pinning>>,
}

impl Parts {
    fn read(version: Arc<str>, compiled: Compiled, credentials: Credentials) -> Self {
        Self {
            version,
            loaded_at: SystemTime::now(),
            file: Arc::new(compiled.file),
            catalog: compiled.catalog,
            base_dir: compiled.base_dir,
            policies: Arc::new(compiled.policies),
            policy_digest: compiled.policy_digest,
            files: compiled.files,
            credentials: Arc::new(credentials),
            pinning: compiled.pinning,
        }
    }

    /// The parts `snapshot` was assembled from.
    fn of(snapshot: &Snapshot) -> Self {
        Self {
            version: snapshot.version.clone(),
            loaded_at: snapshot.loaded_at,
            file: snapshot.file.clone(),
            catalog: Catalog::compile(&snapshot.file, &snapshot.base_dir),
            base_dir: snapshot.base_dir.clone(),
            policies: snapshot.policies.clone(),
            policy_digest: snapshot.policy_digest,
            files: snapshot.files.clone(),
            credentials: snapshot.credentials.clone(),
            pinning: snapshot.catalog.pinning().cloned(),
        }
    }
}

/// Build a snapshot of `parts`, from `before` where it has one. The
/// servers come first: what they offer decides what their `expose` rules
/// add to the catalog.
fn assemble(
    parts: Parts,
    before: Option<&Snapshot>,
    pool: &UpstreamPool,
    peers: &broadcast::Sender<Event>,
) -> Snapshot {
    let file = &parts.file;
    let identity = Authenticator::new(&file.identity, before.map(|b| &*b.identity));
    let empty = Upstreams::default();
    let previous = before.map_or(&empty, |b| &b.upstreams);
    let shared = shared(
        file.redis.as_ref(),
        before.and_then(|b| b.shared.as_ref()),
        peers,
    );
    let credentials = &parts.credentials;
    let upstreams = pool.reconcile(previous, &parts.catalog, credentials, shared.as_ref());
    let exposed_before = before.map(|b| &b.exposure);
    let exposure = expose::exposure(file, &parts.catalog, &upstreams, exposed_before);
    let (mut catalog, upstreams) = if exposure.tools.is_empty() && exposure.prompts.is_empty() {
        (parts.catalog, upstreams)
    } else {
        let catalog = Catalog::compile(&exposure.apply(file), &parts.base_dir);
        // The same servers, told of their exposed tools.
        let upstreams = pool.reconcile(&upstreams, &catalog, credentials, shared.as_ref());
        (catalog, upstreams)
    };
    catalog.set_pinning(parts.pinning);
    let limits = Limits::compile(&file.limits, before.map(|b| &b.limits));
    let circuits =
        (file.servers.iter()).filter_map(|(name, server)| Some((name.as_str(), server.circuit?)));
    let breakers = Breakers::compile(circuits, before.map(|b| &b.breakers));
    let shares = (file.servers.iter()).map(|(name, server)| (name.as_str(), server.concurrency));
    let gates = Gates::compile(shares, before.map(|b| &b.gates));
    Snapshot {
        version: parts.version,
        loaded_at: parts.loaded_at,
        restart_only: RestartOnly::of(file),
        policy_digest: parts.policy_digest,
        files: parts.files,
        catalog,
        exposure,
        policies: parts.policies,
        identity: Arc::new(identity),
        credentials: parts.credentials,
        upstreams,
        limits,
        breakers,
        gates,
        shared,
        file: parts.file,
        base_dir: parts.base_dir,
    }
}

/// The store for `config`: the one `before` had if its settings are the
/// same (its connection stays), else a new one. One that cannot be made
/// (an unset variable, a malformed URL) leaves this replica on its own
/// state, and says so.
fn shared(
    config: Option<&RedisConfig>,
    before: Option<&Arc<Shared>>,
    peers: &broadcast::Sender<Event>,
) -> Option<Arc<Shared>> {
    let config = config?;
    if let Some(kept) = before.filter(|b| b.config() == config) {
        return Some(kept.clone());
    }
    match Shared::new(config, peers.clone()) {
        Ok(shared) => Some(Arc::new(shared)),
        Err(error) => {
            tracing::error!(%error, "redis not configured; each replica keeps its own rate limits");
            None
        }
    }
}
