//! Reloading when the catalog or a file it names changes, and on SIGHUP.
//!
//! The watcher listens (inotify, through the `notify` crate) to the
//! directories of the files the version in force was read from: editors
//! and `kubectl` replace a file by renaming another over it, which only
//! the directory sees. Changes are gathered for a moment, then one reload
//! runs. Where no watcher can be set up, the files are polled instead.
//! With `--no-watch` only SIGHUP reloads.
//! After every reload the watched set follows the files the version in
//! force names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::Live;

/// How long changes are gathered before one reload runs (an editor's save
/// is several events).
const SETTLE: Duration = Duration::from_millis(150);
/// How often the files are read again where no watcher could be set up.
const POLL: Duration = Duration::from_secs(2);

/// Reload on SIGHUP and, where `files` is set, on file changes, until
/// `live` is dropped.
pub fn watch(live: &Arc<Live>, files: bool) -> tokio::task::JoinHandle<()> {
    let live = Arc::downgrade(live);
    tokio::spawn(async move {
        let (tx, mut changed) = mpsc::channel::<()>(1);
        // The files the version in force names.
        let relevant = Arc::new(RwLock::new(Vec::<PathBuf>::new()));
        let watcher = files.then(|| file_watcher(relevant.clone(), tx));
        let polling = matches!(watcher, Some(Err(_)));
        let mut watcher = watcher.and_then(Result::ok);
        let mut watched = BTreeSet::new();
        let mut hangup = hangup_signal();
        let mut poll = tokio::time::interval(POLL);
        loop {
            if let (Some(watcher), Some(live)) = (watcher.as_mut(), live.upgrade()) {
                let files = live.files();
                follow(watcher, &mut watched, &files);
                *relevant.write().unwrap_or_else(|p| p.into_inner()) = files;
            }
            tokio::select! {
                Some(()) = changed.recv() => {
                    // Gather the rest of this change.
                    tokio::time::sleep(SETTLE).await;
                    while changed.try_recv().is_ok() {}
                }
                Some(()) = hangup.recv() => tracing::info!("SIGHUP: reloading the catalog"),
                _ = poll.tick(), if polling => {}
            }
            let Some(live) = live.upgrade() else {
                return;
            };
            let _ = live.reload().await;
        }
    })
}

/// A watcher that wakes `tx` when one of the `relevant` files changes
/// (others in the same directories, such as an audit database next to the
/// catalog, do not count).
fn file_watcher(
    relevant: Arc<RwLock<Vec<PathBuf>>>,
    tx: mpsc::Sender<()>,
) -> notify::Result<RecommendedWatcher> {
    notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let files = relevant.read().unwrap_or_else(|p| p.into_inner());
        let counts = |path: &PathBuf| files.iter().any(|file| path.starts_with(file));
        if !event.kind.is_access() && event.paths.iter().any(counts) {
            let _ = tx.try_send(());
        }
    })
    .inspect_err(|error| {
        tracing::warn!(%error, every = ?POLL, "cannot watch the catalog's files; polling them instead");
    })
}

/// Watch the directories of `files` (and `files` that are directories,
/// such as a policy folder), and stop watching those no longer named.
fn follow(watcher: &mut RecommendedWatcher, watched: &mut BTreeSet<PathBuf>, files: &[PathBuf]) {
    let wanted: BTreeSet<PathBuf> = files
        .iter()
        .flat_map(|file| {
            let dir = file.parent().map(Path::to_path_buf);
            let itself = file.is_dir().then(|| file.clone());
            dir.into_iter().chain(itself)
        })
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            }
        })
        .collect();
    for gone in watched.difference(&wanted) {
        let _ = watcher.unwatch(gone);
    }
    for dir in wanted.difference(watched) {
        if let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), %error, "cannot watch a directory of the catalog's files");
        }
    }
    *watched = wanted;
}

/// SIGHUP as a stream of wake-ups (never, where there is no SIGHUP).
fn hangup_signal() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hangup.recv().await.is_some() {
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    #[cfg(not(unix))]
    drop(tx);
    rx
}
