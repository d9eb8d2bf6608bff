//! Turning the catalog file (and every file it names) into what serves:
//! the one code path `check`, `serve` and every reload take.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::config::{self, CatalogFile, ConfigErrors, CredentialConfig};
use crate::guardrails::pins::{LockError, LockFile, Pinning, PinningMode};
use crate::policy::{Policies, PolicyError, policy_files};

/// Why a catalog version cannot be put in force. Each names the file and
/// where in it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("{file}: policy: {error}")]
    Policy { file: PathBuf, error: PolicyError },
    #[error("{file}: {error}")]
    Credentials {
        file: PathBuf,
        error: crate::credentials::SetupError,
    },
    #[error("{0}")]
    Lock(#[from] LockError),
}

/// A catalog file read, validated and compiled, with its policy compiled
/// and its tests passed.
pub struct Compiled {
    /// The file as read (with the command line's key file in it).
    pub file: CatalogFile,
    /// The file compiled, before any server's `expose` rule applies.
    pub catalog: Catalog,
    pub policies: Policies,
    /// The catalog's directory: relative paths in it are relative to this.
    pub base_dir: PathBuf,
    /// SHA-256 over the catalog's text and its policy files' contents.
    pub digest: Sha256,
    /// SHA-256 of the policy files alone, to tell whether the policy changed.
    pub policy_digest: [u8; 32],
    /// Every file this version was read from, to watch for changes.
    pub files: Vec<PathBuf>,
    /// The lock of pinned definitions beside the catalog, unless there is
    /// none or `pinning: off`.
    pub pinning: Option<Arc<Pinning>>,
}

impl Compiled {
    /// Read, validate and compile the catalog at `path`, then its policy
    /// (running the policy's tests). `key_file`, when given, replaces the
    /// catalog's `credentials.key_file`.
    pub fn load(path: &Path, key_file: Option<&Path>) -> Result<Self, LoadError> {
        let (mut file, text) = config::read_file(path)?;
        if let Some(key_file) = key_file {
            file.credentials.key_file = key_file.to_path_buf();
        }
        let base_dir = path.parent().map(PathBuf::from).unwrap_or_default();
        let catalog = Catalog::compile(&file, &base_dir);
        let policies =
            Policies::open(file.policy.as_ref(), &base_dir).map_err(|error| LoadError::Policy {
                file: path.to_path_buf(),
                error,
            })?;
        let policy = policy_files(file.policy.as_ref(), &base_dir);
        let files = named_files(path, &policy, &file, &base_dir);
        let lock_path = LockFile::path_for(path);
        let lock = LockFile::read(&lock_path)?;
        let mut policy_digest = Sha256::new();
        for file in policy.iter().filter(|f| f.is_file()) {
            // Named relative to the catalog: the same files give the same
            // version wherever a replica mounts them.
            let named = file.strip_prefix(&base_dir).unwrap_or(file);
            policy_digest.update(named.as_os_str().as_encoded_bytes());
            policy_digest.update(std::fs::read(file).unwrap_or_default());
        }
        let policy_digest: [u8; 32] = policy_digest.finalize().into();
        let mut digest = Sha256::new();
        digest.update(text.as_bytes());
        digest.update(policy_digest);
        if let Some(lock) = &lock {
            digest.update(serde_json::to_vec(lock).unwrap_or_default());
        }
        let pinning = (lock.filter(|_| file.pinning != PinningMode::Off)).map(|lock| {
            Arc::new(Pinning {
                mode: file.pinning,
                lock,
            })
        });
        Ok(Self {
            file,
            catalog,
            policies,
            base_dir,
            digest,
            policy_digest,
            files,
            pinning,
        })
    }
}

/// The files a catalog at `path` names, as far as it can be read: to
/// watch a version that was refused until it is fixed.
pub fn files_named_by(path: &Path) -> Vec<PathBuf> {
    let base_dir = path.parent().map(PathBuf::from).unwrap_or_default();
    match config::load_file(path) {
        Ok(file) => {
            let policy = policy_files(file.policy.as_ref(), &base_dir);
            named_files(path, &policy, &file, &base_dir)
        }
        Err(_) => vec![path.to_path_buf()],
    }
}

/// The catalog itself, its policy's files and its secret files.
fn named_files(
    path: &Path,
    policy: &[PathBuf],
    file: &CatalogFile,
    base_dir: &Path,
) -> Vec<PathBuf> {
    let mut files = vec![path.to_path_buf(), LockFile::path_for(path)];
    files.extend_from_slice(policy);
    files.extend(secret_files(file, base_dir));
    files
}

/// The files the servers' credential providers read their secrets from.
fn secret_files(file: &CatalogFile, base_dir: &Path) -> Vec<PathBuf> {
    (file.servers.iter())
        .filter_map(|(_, server)| match &server.credential {
            CredentialConfig::Static(secret) => secret.file.clone(),
            CredentialConfig::OauthTokenExchange(exchange) => exchange.client_secret.file.clone(),
            CredentialConfig::Jwt
            | CredentialConfig::None
            | CredentialConfig::AwsSts(_)
            | CredentialConfig::Vault(_) => None,
        })
        .chain(
            file.vault
                .as_ref()
                .and_then(|vault| vault.auth.source().file),
        )
        .map(|secret| base_dir.join(secret))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalog and its policy, written into `dir`.
    fn write_example(dir: &Path, allow: &str) -> PathBuf {
        std::fs::create_dir(dir.join("policies")).unwrap();
        let policy = format!("package mcp.authz\n\nallow if {allow}\n");
        std::fs::write(dir.join("policies/authz.rego"), policy).unwrap();
        let catalog = "environment: test\npolicy: {files: [policies]}\nservers: {}\ntools: {}\nroles: {}\nagents: {}\n";
        let path = dir.join("catalog.yaml");
        std::fs::write(&path, catalog).unwrap();
        path
    }

    fn version(path: &Path) -> [u8; 32] {
        Compiled::load(path, None).unwrap().digest.finalize().into()
    }

    #[test]
    fn the_same_files_have_the_same_version_wherever_they_are_and_a_change_makes_another() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = version(&write_example(one.path(), "true"));
        assert_eq!(version(&write_example(two.path(), "true")), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(version(&write_example(other.path(), "false")), first);
    }
}
