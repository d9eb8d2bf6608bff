//! Approving a tool or prompt the lock of pinned definitions quarantines,
//! from the running process (the console): its servers' definitions as
//! served now are written into the lock beside the catalog, and the
//! catalog is reloaded with it, as `pins approve` and the file watcher
//! would do.

use std::sync::Arc;

use super::Live;
use crate::discovery::quarantine;
use crate::guardrails::pins::{LockError, LockFile, Pinned};

/// Why an approval did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    #[error("no lock of pinned definitions is in force")]
    NoLock,
    #[error("no server serves a tool or prompt `{0}` of this catalog now")]
    NotServed(String),
    #[error("{0}")]
    Lock(#[from] LockError),
    #[error("the catalog with the approval was refused: {0}")]
    Reload(Arc<str>),
}

impl Live {
    /// Pin what the servers serve now for public name `name` (a tool or a
    /// prompt) and put the lock in force. Returns the servers approved.
    pub async fn approve(self: &Arc<Self>, name: &str) -> Result<Vec<Arc<str>>, ApproveError> {
        let snapshot = self.current();
        let catalog = &snapshot.catalog;
        if catalog.pinning().is_none() {
            return Err(ApproveError::NoLock);
        }
        let path = LockFile::path_for(&self.path);
        let mut lock = LockFile::read(&path)?.unwrap_or_default();
        let routes = [
            (Pinned::Tool, catalog.tool(name)),
            (Pinned::Prompt, catalog.prompt(name)),
        ];
        let mut approved = Vec::new();
        for (kind, route) in routes {
            let Some(route) = route else { continue };
            let definitions = quarantine::served(catalog, &snapshot.upstreams, kind, route);
            for (server, upstream, definition) in definitions {
                lock.pin(kind, name, &server, &upstream, definition);
                approved.push(server);
            }
        }
        if approved.is_empty() {
            return Err(ApproveError::NotServed(name.to_owned()));
        }
        lock.write(&path)?;
        self.reload().await.map_err(ApproveError::Reload)?;
        Ok(approved)
    }
}
