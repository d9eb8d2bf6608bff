//! The policy in force, and its reloading.
//!
//! The current version sits behind an atomic pointer: a decision loads it
//! without a lock. When the policy's files change (checked every few
//! seconds) or on SIGHUP, the new set is compiled and its tests run; only
//! if both succeed does it replace the old one. A broken policy never
//! replaces a working one: the error is logged and shown in `/readyz`, and
//! the old version keeps deciding.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use serde::Serialize;

use super::rego::{Decision, DenyCause, PolicyError, RegoPolicy, rego_files};
use crate::config::{PolicyConfig, RegoSettings};

/// What decides calls after the role check.
pub enum Rules {
    /// `policy: allow-all`.
    AllowAll,
    /// No policy configured: every call is denied.
    DenyAll,
    Rego(Arc<RegoPolicy>),
}

/// What `/readyz` says about the policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyStatus {
    /// `rego`, `allow_all` or `deny_all`.
    pub mode: &'static str,
    /// Counts successful loads, starting at 1.
    pub version: u64,
    /// The number of policy tests the version in force passed.
    pub tests_passed: usize,
    /// Why the last reload was refused, until one succeeds.
    pub reload_error: Option<String>,
}

/// The files of a Rego policy, with their modification times and sizes.
type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

pub struct Policies {
    rules: ArcSwap<Rules>,
    status: ArcSwap<PolicyStatus>,
    /// The Rego settings and the catalog's directory, when there is a policy
    /// to reload.
    source: Option<(RegoSettings, PathBuf)>,
    fingerprint: Mutex<Fingerprint>,
}

impl Policies {
    /// Load the configured policy. At start a policy that does not compile
    /// or fails its tests is an error: there is no older one to keep.
    pub fn open(config: Option<&PolicyConfig>, base_dir: &Path) -> Result<Self, PolicyError> {
        let (rules, mode, tests, source) = match config {
            None => (Rules::DenyAll, "deny_all", 0, None),
            Some(PolicyConfig::AllowAll) => (Rules::AllowAll, "allow_all", 0, None),
            Some(PolicyConfig::Rego(settings)) => {
                let policy = RegoPolicy::load(settings, base_dir)?;
                let tests = policy.check_tests()?;
                let source = (settings.clone(), base_dir.to_path_buf());
                (Rules::Rego(Arc::new(policy)), "rego", tests, Some(source))
            }
        };
        let fingerprint = source
            .as_ref()
            .and_then(|(settings, dir)| fingerprint(settings, dir))
            .unwrap_or_default();
        Ok(Self {
            rules: ArcSwap::from_pointee(rules),
            status: ArcSwap::from_pointee(PolicyStatus {
                mode,
                version: 1,
                tests_passed: tests,
                reload_error: None,
            }),
            source,
            fingerprint: Mutex::new(fingerprint),
        })
    }

    /// Decide a request; `input` is built only when a Rego policy needs it.
    pub fn decide(&self, input: impl FnOnce() -> regorus::Value) -> Decision {
        match &**self.rules.load() {
            Rules::AllowAll => Decision::Allow,
            Rules::DenyAll => Decision::Deny {
                reasons: vec!["no policy is configured".into()],
                cause: DenyCause::NoPolicy,
            },
            Rules::Rego(policy) => policy.decide(input()),
        }
    }

    /// Whether discovery shows a target (the `visible` rule, if declared).
    /// `input` is built only when a `visible` rule needs it; `None` (no input
    /// can be built for the target) hides it.
    pub fn shows(&self, input: impl FnOnce() -> Option<regorus::Value>) -> bool {
        match &**self.rules.load() {
            Rules::Rego(policy) if policy.has_visibility() => {
                input().is_some_and(|i| policy.shows(i))
            }
            _ => true,
        }
    }

    pub fn status(&self) -> Arc<PolicyStatus> {
        self.status.load_full()
    }

    /// Compile the policy's files again and, if it compiles and its tests
    /// pass, put it in force. Returns the number of tests it passed.
    pub fn reload(&self) -> Result<usize, PolicyError> {
        let Some((settings, dir)) = &self.source else {
            return Ok(0);
        };
        let loaded = RegoPolicy::load(settings, dir).and_then(|policy| {
            let tests = policy.check_tests()?;
            Ok((policy, tests))
        });
        let status = self.status.load();
        match loaded {
            Ok((policy, tests)) => {
                self.rules.store(Arc::new(Rules::Rego(Arc::new(policy))));
                let version = status.version + 1;
                self.status.store(Arc::new(PolicyStatus {
                    mode: "rego",
                    version,
                    tests_passed: tests,
                    reload_error: None,
                }));
                tracing::info!(version, tests, "policy reloaded");
                Ok(tests)
            }
            Err(error) => {
                tracing::error!(%error, version = status.version, "policy reload refused; the previous policy stays in force");
                self.status.store(Arc::new(PolicyStatus {
                    reload_error: Some(error.to_string()),
                    ..(**status).clone()
                }));
                Err(error)
            }
        }
    }

    /// Take the files' current fingerprint; whether it differs from the
    /// last one taken.
    fn files_changed(&self) -> bool {
        let Some((settings, dir)) = &self.source else {
            return false;
        };
        let Some(now) = fingerprint(settings, dir) else {
            return false;
        };
        let mut last = self.fingerprint.lock().unwrap_or_else(|p| p.into_inner());
        let changed = *last != now;
        *last = now;
        changed
    }

    /// Reload when the files change (checked every `every`) and on SIGHUP.
    pub fn watch(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let policies = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut hangup = hangup_signal();
            loop {
                let forced = tokio::select! {
                    _ = tick.tick() => false,
                    Some(()) = hangup.recv() => true,
                };
                let Some(policies) = policies.upgrade() else {
                    return;
                };
                let _ = tokio::task::spawn_blocking(move || {
                    if policies.files_changed() || forced {
                        let _ = policies.reload();
                    }
                })
                .await;
            }
        })
    }
}

/// The policy files as they are now, or `None` when that cannot be told
/// (a transient failure such as running out of file descriptors says
/// nothing about the files, so it must not count as a change).
fn fingerprint(settings: &RegoSettings, dir: &Path) -> Option<Fingerprint> {
    let gone = |path: &Path| {
        std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    };
    let mut files = match rego_files(&settings.files, dir) {
        Ok(files) => files,
        Err(_) => {
            // A configured file or directory that is gone is a change (the
            // reload reports it); any other failure tells nothing.
            let missing: Fingerprint = (settings.files.iter().map(|f| dir.join(f)))
                .filter(|path| gone(path))
                .map(|path| (path, None, 0))
                .collect();
            return (!missing.is_empty()).then_some(missing);
        }
    };
    files.extend(settings.data.iter().map(|f| dir.join(f)));
    files
        .into_iter()
        .map(|path| match std::fs::metadata(&path) {
            Ok(meta) => Some((path, meta.modified().ok(), meta.len())),
            Err(_) if gone(&path) => Some((path, None, 0)),
            Err(_) => None,
        })
        .collect()
}

/// SIGHUP as a stream of wake-ups (never, where there is no SIGHUP).
fn hangup_signal() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_to_look_at_the_files_is_no_change_but_a_missing_file_is() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("authz.rego"), "package x").unwrap();
        let settings = |files: &[&str]| {
            RegoSettings::new(files.iter().map(PathBuf::from).collect(), Vec::new())
        };
        let present = fingerprint(&settings(&["authz.rego"]), dir.path()).unwrap();
        assert_eq!(present.len(), 1);
        assert!(present[0].1.is_some());
        // `authz.rego/inner` cannot even be looked at (not a directory):
        // that tells nothing about the files.
        assert_eq!(
            fingerprint(&settings(&["authz.rego/inner"]), dir.path()),
            None
        );
        // A configured file that is gone is a change.
        let gone = fingerprint(&settings(&["gone.rego"]), dir.path()).unwrap();
        assert_eq!(gone, vec![(dir.path().join("gone.rego"), None, 0)]);
    }
}
