//! JSON lines on stdout or in a size-rotated file: the shape log shippers
//! (Filebeat, Vector, Fluent Bit) carry into ELK and friends.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::record::StoredRecord;
use super::spool::Sink;

pub struct JsonlSink {
    name: String,
    state: Arc<Mutex<Target>>,
}

enum Target {
    Stdout,
    File {
        path: PathBuf,
        file: Option<File>,
        size: u64,
        max_bytes: u64,
        keep: u32,
    },
}

impl JsonlSink {
    /// `None`: stdout.
    pub fn new(path: Option<PathBuf>, max_bytes: u64, keep: u32) -> Self {
        let (name, target) = match path {
            None => ("jsonl:stdout".to_string(), Target::Stdout),
            Some(path) => (
                format!("jsonl:{}", path.display()),
                Target::File {
                    path,
                    file: None,
                    size: 0,
                    max_bytes,
                    keep,
                },
            ),
        };
        Self {
            name,
            state: Arc::new(Mutex::new(target)),
        }
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write<'a>(&'a mut self, batch: &'a [StoredRecord]) -> BoxFuture<'a, Result<(), String>> {
        let mut text = String::new();
        for record in batch {
            text.push_str(&record.json);
            text.push('\n');
        }
        let state = self.state.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut target = state.lock().map_err(|e| e.to_string())?;
                target.append(text.as_bytes()).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?
        })
    }
}

impl Target {
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let Self::File {
            path,
            file,
            size,
            max_bytes,
            keep,
        } = self
        else {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(bytes)?;
            return stdout.flush();
        };
        if file.is_some() && *size + bytes.len() as u64 > *max_bytes {
            *file = None;
            rotate(path, *keep)?;
        }
        if file.is_none() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let opened = OpenOptions::new().create(true).append(true).open(&*path)?;
            *size = opened.metadata()?.len();
            *file = Some(opened);
        }
        let Some(open) = file.as_mut() else {
            return Ok(());
        };
        open.write_all(bytes)?;
        open.sync_data()?;
        *size += bytes.len() as u64;
        Ok(())
    }
}

/// `file` -> `file.1` -> `file.2` ..., dropping the oldest beyond `keep`.
fn rotate(path: &std::path::Path, keep: u32) -> std::io::Result<()> {
    let numbered = |n: u32| {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    };
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(numbered(keep));
    for n in (1..keep).rev() {
        if numbered(n).exists() {
            std::fs::rename(numbered(n), numbered(n + 1))?;
        }
    }
    std::fs::rename(path, numbered(1))
}
