//! The catalog's HashiCorp Vault / OpenBao settings: how the control plane
//! reaches and logs in to Vault, and a server's per-call Vault credential.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::SecretSource;

/// Where Vault is and how the control plane logs in to it (top-level
/// `vault:`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// Its base URL, for example `https://vault.internal:8200`.
    pub address: String,
    /// How the control plane authenticates itself.
    pub auth: VaultAuth,
    /// A Vault Enterprise / OpenBao namespace (`X-Vault-Namespace`).
    pub namespace: Option<String>,
}

/// The control plane's own Vault token: from an environment variable or a
/// file (relative to the catalog's directory), read when the catalog loads.
/// Exactly one of the two. (AppRole and JWT login are not built yet.)
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VaultAuth {
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
}

impl VaultAuth {
    /// Where the token is read from.
    pub fn source(&self) -> SecretSource {
        SecretSource {
            env: self.token_env.clone(),
            file: self.token_file.clone(),
        }
    }
}

/// What a server gets from Vault for each call (`credential: {provider:
/// vault, ...}`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VaultCredential {
    /// `token`: a child token per call, revoked when the call ends.
    pub kind: VaultKind,
    /// The Vault policies the token carries (and no others).
    #[serde(default)]
    pub policies: Vec<String>,
    /// A token role to create it under (`auth/token/create/ROLE`), whose
    /// settings Vault enforces, instead of `policies`.
    pub role: Option<String>,
    /// The token's lifetime; never longer than the server's `timeout` plus
    /// [`LEASE_MARGIN`]. Default 60 s.
    #[serde(default = "default_ttl", with = "humantime_serde")]
    pub ttl: Duration,
    /// How many requests to Vault the token may make; `0`: no limit.
    #[serde(default)]
    pub uses: u32,
    /// The HTTP header the token goes in. Default `X-Vault-Token`.
    pub header: Option<String>,
}

/// The kinds of Vault credential. (`secret` and `sign` are not built yet.)
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum VaultKind {
    Token,
}

/// How long a per-call token may outlive the call's time limit.
pub const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// The longest `ttl` accepted.
pub const MAX_TTL: Duration = Duration::from_secs(3600);

fn default_ttl() -> Duration {
    Duration::from_secs(60)
}
