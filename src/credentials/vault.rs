//! The `vault` provider, kind `token`: a Vault (or OpenBao) child token per
//! call, carrying only the server's Vault policies (or a token role's), a
//! short lifetime and a use limit, with metadata naming the agent, its
//! role, the server, the tool and the trace id, so Vault's own audit log
//! ties back to ours. The upstream receives it (in `X-Vault-Token`, or the
//! catalog's header; in `_meta` over stdio) and reads its own secrets with
//! it. The call holds the token's [`Lease`]; when the call ends, answered
//! or not, the lease is dropped and the token revoked by its accessor,
//! retried in the background if Vault does not take the revocation.
//!
//! The control plane logs in with its own token (from an environment
//! variable or a file, read when the catalog loads). The child token, its
//! accessor and our token never reach a log, a record or an answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::mint::{Grant, Minter};
use super::provider::Provider;
use super::{Credential, CredentialError};
use crate::config::vault::{LEASE_MARGIN, VaultConfig, VaultCredential};

/// The longest a request to Vault may take.
const VAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a revocation is tried before it is counted as failed.
const REVOKE_ATTEMPTS: u32 = 4;

/// Revocations that failed every attempt (`mcp_cp_vault_revocations_failed_total`).
pub static REVOCATIONS_FAILED: AtomicU64 = AtomicU64::new(0);

/// How the control plane talks to Vault as itself.
#[derive(Clone)]
struct VaultClient {
    http: reqwest::Client,
    address: Arc<str>,
    namespace: Option<Arc<str>>,
    token: Credential,
}

impl VaultClient {
    async fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let mut request = (self.http)
            .post(format!("{}/v1/{path}", self.address.trim_end_matches('/')))
            .header("X-Vault-Token", self.token.expose())
            .timeout(VAULT_TIMEOUT)
            .json(body);
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", &**namespace);
        }
        let response = request.send().await.map_err(|error| {
            let why = if error.is_timeout() {
                "timed out"
            } else {
                "unreachable"
            };
            format!("Vault {why}")
        })?;
        let status = response.status();
        if !status.is_success() {
            // Vault's error texts name paths and policies, never secrets,
            // but they stay in the log: the record gets the status.
            let detail = response.text().await.unwrap_or_default();
            tracing::warn!(%status, detail = %detail.chars().take(300).collect::<String>(), "Vault refused a request");
            return Err(format!("Vault refused the request ({status})"));
        }
        if status == reqwest::StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        response
            .json()
            .await
            .map_err(|_| "Vault's answer is not JSON".to_owned())
    }
}

/// A token per call.
pub(super) struct VaultToken {
    vault: VaultClient,
    /// `auth/token/create` or `auth/token/create/ROLE`.
    create: String,
    policies: Vec<String>,
    ttl: Duration,
    uses: u32,
}

impl VaultToken {
    /// `token` is the control plane's own Vault token; `call_limit` the
    /// server's timeout, which bounds how long a token may live.
    pub(super) fn new(
        vault: &VaultConfig,
        config: &VaultCredential,
        token: String,
        call_limit: Duration,
    ) -> Result<Self, String> {
        let http = crate::outbound::client()
            .build()
            .map_err(|error| format!("cannot build the Vault client: {error}"))?;
        let create = match &config.role {
            Some(role) => format!("auth/token/create/{role}"),
            None => "auth/token/create".to_owned(),
        };
        Ok(Self {
            vault: VaultClient {
                http,
                address: vault.address.as_str().into(),
                namespace: vault.namespace.as_deref().map(Into::into),
                token: Credential::new(token),
            },
            create,
            policies: config.policies.clone(),
            ttl: config.ttl.min(call_limit + LEASE_MARGIN),
            uses: config.uses,
        })
    }

    async fn create(&self, grant: &Grant<'_>) -> Result<Credential, CredentialError> {
        let mut body = json!({
            "ttl": format!("{}s", self.ttl.as_secs().max(1)),
            "explicit_max_ttl": format!("{}s", self.ttl.as_secs().max(1)),
            "num_uses": self.uses,
            "renewable": false,
            "display_name": format!("mcp-{}", grant.agent),
            "meta": {
                "agent": grant.agent,
                "role": grant.role,
                "server": grant.server,
                "tool": grant.scope,
                "trace_id": grant.trace_id,
            },
        });
        if !self.policies.is_empty() {
            body["policies"] = json!(self.policies);
            body["no_default_policy"] = json!(true);
        }
        let answer =
            (self.vault.post(&self.create, &body).await).map_err(CredentialError::Vault)?;
        let auth = &answer["auth"];
        let (Some(token), Some(accessor)) =
            (auth["client_token"].as_str(), auth["accessor"].as_str())
        else {
            return Err(CredentialError::Vault(
                "Vault's answer holds no token".into(),
            ));
        };
        let lease = Lease {
            vault: self.vault.clone(),
            accessor: accessor.into(),
        };
        Ok(Credential::leased(token, Arc::new(lease)))
    }
}

impl Provider for VaultToken {
    fn issue<'a>(
        &'a self,
        _minter: &'a Minter,
        grant: &'a Grant<'a>,
    ) -> BoxFuture<'a, Result<Option<Credential>, CredentialError>> {
        Box::pin(async move { self.create(grant).await.map(Some) })
    }

    /// The control plane's own requests to the server carry no Vault token:
    /// a token is only ever for one call.
    fn for_connection(&self, _minter: &Minter, _server: &str) -> Option<Credential> {
        None
    }
}

/// A per-call token's hold: when the call's last reference goes, the token
/// is revoked by its accessor.
pub struct Lease {
    vault: VaultClient,
    accessor: Box<str>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let vault = self.vault.clone();
        let accessor = std::mem::take(&mut self.accessor);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let body = json!({ "accessor": &*accessor });
            let mut wait = Duration::from_millis(250);
            for attempt in 1..=REVOKE_ATTEMPTS {
                match vault.post("auth/token/revoke-accessor", &body).await {
                    Ok(_) => return,
                    Err(error) if attempt == REVOKE_ATTEMPTS => {
                        REVOCATIONS_FAILED.fetch_add(1, Ordering::Relaxed);
                        // The accessor names the token without being it.
                        tracing::warn!(%accessor, %error, "a per-call Vault token could not be revoked; it expires with its TTL");
                    }
                    Err(_) => {
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                }
            }
        });
    }
}
