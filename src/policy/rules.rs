//! The policy of one catalog version: what decides calls after the role
//! check. Compiled (and its tests run) when the catalog is loaded; a
//! version that does not compile or fails its tests is never put in force
//! (see `live`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::rego::{Decision, DenyCause, PolicyError, RegoPolicy, rego_files};
use super::result::ResultDecision;
use crate::config::PolicyConfig;

/// What decides calls after the role check.
enum Rules {
    /// `policy: allow-all`.
    AllowAll,
    /// No policy configured: every call is denied.
    DenyAll,
    Rego(Box<RegoPolicy>),
}

/// What `/readyz` says about the policy in force.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyStatus {
    /// `rego`, `allow_all` or `deny_all`.
    pub mode: &'static str,
    /// The number of policy tests the version in force passed.
    pub tests_passed: usize,
}

/// A compiled policy whose tests passed.
pub struct Policies {
    rules: Rules,
    status: PolicyStatus,
}

impl Policies {
    /// Compile the configured policy and run its tests.
    pub fn open(config: Option<&PolicyConfig>, base_dir: &Path) -> Result<Self, PolicyError> {
        let (rules, mode, tests_passed) = match config {
            None => (Rules::DenyAll, "deny_all", 0),
            Some(PolicyConfig::AllowAll) => (Rules::AllowAll, "allow_all", 0),
            Some(PolicyConfig::Rego(settings)) => {
                let policy = RegoPolicy::load(settings, base_dir)?;
                let tests = policy.check_tests()?;
                (Rules::Rego(Box::new(policy)), "rego", tests)
            }
        };
        Ok(Self {
            rules,
            status: PolicyStatus { mode, tests_passed },
        })
    }

    /// Decide a request; `input` is built only when a Rego policy needs it.
    pub fn decide(&self, input: impl FnOnce() -> regorus::Value) -> Decision {
        match &self.rules {
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
        match &self.rules {
            Rules::Rego(policy) if policy.has_visibility() => {
                input().is_some_and(|i| policy.shows(i))
            }
            _ => true,
        }
    }

    /// Whether the policy hides some of what roles grant from discovery
    /// (a `visible` rule): a new version may then change what sessions see.
    /// Whether results are judged: only a Rego policy that declares the
    /// result rule's `deny` or `redact` does.
    pub fn judges_results(&self) -> bool {
        matches!(&self.rules, Rules::Rego(policy) if policy.judges_results())
    }

    /// Judge a result (pass, when the policy does not judge results).
    pub fn judge_result(&self, input: impl FnOnce() -> regorus::Value) -> ResultDecision {
        match &self.rules {
            Rules::Rego(policy) if policy.judges_results() => policy.judge_result(input()),
            _ => ResultDecision::Pass,
        }
    }

    pub fn filters_discovery(&self) -> bool {
        matches!(&self.rules, Rules::Rego(policy) if policy.has_visibility())
    }

    pub fn status(&self) -> &PolicyStatus {
        &self.status
    }
}

/// The files a policy is read from, as they are now: the configured
/// paths (directories as such, so a file added to one counts), each Rego
/// file under them, and the data files. For the catalog's watcher and its
/// version.
pub fn policy_files(config: Option<&PolicyConfig>, base_dir: &Path) -> Vec<PathBuf> {
    let Some(PolicyConfig::Rego(settings)) = config else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = settings.files.iter().map(|f| base_dir.join(f)).collect();
    files.extend(rego_files(&settings.files, base_dir).unwrap_or_default());
    files.extend(settings.data.iter().map(|f| base_dir.join(f)));
    files.sort();
    files.dedup();
    files
}
