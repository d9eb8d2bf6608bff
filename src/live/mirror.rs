//! A catalog served from a DynamoDB table: the table is read at start and
//! then every `poll`, and what it holds is written out as a catalog
//! directory (`catalog.json` and the files it names) that the control
//! plane serves like any catalog file. A change in the table is thus
//! loaded, validated and put in force by the same code as an edited file,
//! and a bad edit is refused with the version in force kept.
//!
//! Files it wrote are listed in `.table-files`, so a file removed from
//! the table is removed from the directory too (a policy directory must
//! not keep a module the table no longer has), at once or at the next
//! start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio::task::JoinHandle;

use super::items::{self, CATALOG_FILE, ItemsError};
use crate::aws::dynamodb::{Table, TableError, TableUrl};

const MANIFEST: &str = ".table-files";

/// Why the table could not be served.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("the catalog in table {table}: {error}")]
    Items { table: String, error: ItemsError },
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
}

/// The directory a table is written to, and the task that keeps it in
/// step (stopped on drop).
pub struct Mirror {
    /// The catalog file to serve.
    pub catalog: PathBuf,
    follow: JoinHandle<()>,
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.follow.abort();
    }
}

impl Mirror {
    /// Read the table into `dir` (which must succeed: there is no older
    /// catalog to serve) and follow it from then on.
    pub async fn start(url: &TableUrl, dir: &Path) -> Result<Self, MirrorError> {
        let table = Table::open(url).await;
        let items = table.items().await?;
        write(&url.table, dir, &items)?;
        tracing::info!(table = %url.table, items = items.len(), dir = %dir.display(), "catalog read from DynamoDB");
        let follow = tokio::spawn(follow(table, dir.to_path_buf(), items));
        Ok(Self {
            catalog: dir.join(CATALOG_FILE),
            follow,
        })
    }
}

/// Read the table every `poll`; write it out when it changed.
async fn follow(table: Table, dir: PathBuf, mut written: BTreeMap<String, String>) {
    let mut poll = tokio::time::interval(table.url().poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll.tick().await;
    let mut last_error = None;
    loop {
        poll.tick().await;
        let outcome = match table.items().await {
            Ok(items) if items == written => Ok(()),
            Ok(items) => write(&table.url().table, &dir, &items).map(|()| written = items),
            Err(error) => Err(error.into()),
        };
        match outcome {
            Ok(()) => last_error = None,
            Err(error) => {
                let text = error.to_string();
                if last_error.as_ref() != Some(&text) {
                    tracing::error!(%error, "cannot follow the catalog table; the version in force stays");
                }
                last_error = Some(text);
            }
        }
    }
}

/// Write `items` into `dir`: the named files first, the catalog last (its
/// change is what the watcher reloads on), each by a rename so no reader
/// sees half a file; then remove the files the table no longer has.
fn write(table: &str, dir: &Path, items: &BTreeMap<String, String>) -> Result<(), MirrorError> {
    let unpacked = items::unpack(items).map_err(|error| MirrorError::Items {
        table: table.to_owned(),
        error,
    })?;
    let before = std::fs::read_to_string(dir.join(MANIFEST)).unwrap_or_default();
    for (path, text) in &unpacked.files {
        replace(&dir.join(path), text)?;
    }
    let listed: Vec<String> = (unpacked.files.keys())
        .map(|p| p.display().to_string())
        .collect();
    replace(&dir.join(MANIFEST), &listed.join("\n"))?;
    replace(&dir.join(CATALOG_FILE), &unpacked.catalog)?;
    for gone in before
        .lines()
        .filter(|line| !listed.iter().any(|l| l == line))
    {
        // Only what the manifest names, and only beneath `dir`.
        if !gone.is_empty() && !gone.split('/').any(|part| part == ".." || part.is_empty()) {
            let _ = std::fs::remove_file(dir.join(gone));
        }
    }
    Ok(())
}

/// Write `text` to `path` through a temporary file beside it.
fn replace(path: &Path, text: &str) -> Result<(), MirrorError> {
    let failed = |e| MirrorError::Write(path.to_owned(), e);
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    let temporary = path.with_extension("table-tmp");
    std::fs::write(&temporary, text).map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_gone_from_the_table_goes_from_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut items: BTreeMap<String, String> = [
            ("settings/environment", "\"test\""),
            ("files/policies/a.rego", "package a"),
            ("files/policies/b.rego", "package b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        write("t", dir.path(), &items).unwrap();
        assert!(dir.path().join("policies/b.rego").is_file());
        let catalog = std::fs::read_to_string(dir.path().join(CATALOG_FILE)).unwrap();
        assert!(catalog.contains("\"environment\": \"test\""), "{catalog}");
        // A file of the operator's own beside them is left alone.
        std::fs::write(dir.path().join("policies/mine.rego"), "package m").unwrap();
        items.remove("files/policies/b.rego");
        write("t", dir.path(), &items).unwrap();
        assert!(!dir.path().join("policies/b.rego").exists());
        assert!(dir.path().join("policies/a.rego").is_file());
        assert!(dir.path().join("policies/mine.rego").is_file());
        // Items that are not a catalog write nothing.
        items.insert("agents/x".into(), "{".into());
        assert!(write("t", dir.path(), &items).is_err());
        assert!(dir.path().join("policies/a.rego").is_file());
    }
}
