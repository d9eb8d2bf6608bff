//! Credentials: what an upstream server gets instead of the agent's own.
//!
//! For every upstream call the pipeline asks [`Credentials::issue`] for a
//! credential scoped to that one server and that one tool. How it is made is
//! the server's provider, chosen in the catalog:
//!
//! - `jwt` (default): a JWT signed by the control plane ([`mint`]), valid for
//!   seconds, that servers verify offline against `/.well-known/jwks.json`;
//! - `static`: a fixed secret read from an environment variable or a file at
//!   start, for servers that cannot verify JWTs;
//! - `oauth-token-exchange`: an RFC 8693 exchange of the minted JWT for the
//!   server's own access token ([`token_exchange`]);
//! - `aws-sts`: temporary AWS credentials from `AssumeRole`, per agent and
//!   tool ([`aws_sts`]), with which HTTP requests are signed ([`sigv4`]);
//! - `vault`: a Vault / OpenBao token per call, revoked when the call ends
//!   ([`vault`]);
//! - `none`: nothing.
//!
//! The agent's credential is never forwarded. Upstream transports deliver the
//! credential: `Authorization: Bearer` over HTTP, `_meta` over stdio.

mod aws_sts;
pub mod keys;
pub mod mint;
mod provider;
pub mod sigv4;
mod token_exchange;
mod vault;

use std::path::Path;
use std::sync::Arc;

use axum::http::HeaderName;
use sha2::Digest;

use crate::catalog::{Catalog, ServerId};
use crate::config::CredentialConfig;
use crate::identity::Caller;
use aws_sts::AwsSts;
use mint::{Grant, KeySource, Minter};
use provider::Provider;
use token_exchange::TokenExchange;
pub use vault::{Lease, REVOCATIONS_FAILED};

pub use keys::KeyError;

/// The `_meta` key under which stdio upstreams receive their credential.
pub const META_KEY: &str = "mcp-control-plane/credential";

/// A credential for one upstream request. Its `Debug` never shows it.
/// One leased from Vault holds its [`Lease`]: the token is revoked when
/// the last holder (the call's exchange) lets go.
#[derive(Clone)]
pub struct Credential(Arc<str>, Option<Arc<Lease>>);

impl Credential {
    pub fn new(secret: impl Into<Arc<str>>) -> Self {
        Self(secret.into(), None)
    }

    /// A credential that is taken back when its lease is dropped.
    pub fn leased(secret: impl Into<Arc<str>>, lease: Arc<Lease>) -> Self {
        Self(secret.into(), Some(lease))
    }

    /// What must live as long as the call, if anything.
    pub fn lease(&self) -> Option<Arc<Lease>> {
        self.1.clone()
    }

    /// The secret, to put on the wire and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

/// Why no credential could be had for a call. Shown to agents only as a
/// fixed code; the text is for operators' logs.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("the token exchange failed: {0}")]
    Exchange(String),
    #[error("{0}")]
    Sts(String),
    #[error("{0}")]
    Vault(String),
}

/// Why the credential providers could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("servers.{server}.credential: {problem}")]
    Secret { server: String, problem: String },
}

/// What the control plane signs with and where its keys are published:
/// one for the process, shared by every catalog version.
pub struct Signer {
    pub minter: Arc<Minter>,
    /// Where the public keys are published, for stdio children.
    pub jwks_url: Arc<str>,
}

impl Signer {
    /// Open (or create) the signing key the catalog's `credentials` names.
    pub fn open(catalog: &Catalog, base_dir: &Path, jwks_url: String) -> Result<Self, KeyError> {
        let settings = &catalog.credentials;
        let source = KeySource {
            path: base_dir.join(&settings.key_file),
            algorithm: settings.algorithm,
        };
        let minter = Arc::new(Minter::open(&settings.issuer, settings.ttl, source)?);
        Ok(Self {
            minter,
            jwks_url: jwks_url.into(),
        })
    }
}

/// One server's credential provider, with what it needs to issue.
pub struct ServerCredentials {
    name: Arc<str>,
    config: CredentialConfig,
    provider: Box<dyn Provider>,
    /// The header the credential goes in, when not `Authorization: Bearer`
    /// (a static API key).
    header: Option<HeaderName>,
    /// The `aws-sts` provider, whose credentials the upstream client signs
    /// with or delivers in headers.
    aws: Option<Arc<AwsSts>>,
    /// SHA-256 of the secret the provider was built with, if any: a reload
    /// keeps a provider (and its token cache) only while this is the same.
    secret_digest: Option<[u8; 32]>,
    minter: Arc<Minter>,
    jwks_url: Arc<str>,
}

impl ServerCredentials {
    /// The credential for one call of `caller` to `scope` (a tool, or a
    /// prompt or resource) on this server.
    pub async fn issue(
        &self,
        caller: &Caller,
        scope: &str,
        trace_id: &str,
    ) -> Result<Option<Credential>, CredentialError> {
        let grant = Grant {
            agent: &caller.agent_id,
            role: &caller.role,
            server: &self.name,
            scope,
            trace_id,
        };
        self.provider.issue(&self.minter, &grant).await
    }

    /// The credential for the control plane's own requests to the server
    /// (handshake, listings, its event stream).
    pub fn for_connection(&self) -> Option<Credential> {
        self.provider.for_connection(&self.minter, &self.name)
    }

    /// How an HTTP server receives this server's AWS credentials, if its
    /// provider is `aws-sts`: signed for, or delivered as headers.
    pub fn aws_delivery(&self) -> Option<AwsDelivery<'_>> {
        let CredentialConfig::AwsSts(config) = &self.config else {
            return None;
        };
        let signing = config.sign.map(|_| sigv4::Signing {
            region: &config.region,
            service: config.service(),
        });
        Some(AwsDelivery { signing })
    }

    /// The AWS credentials of the control plane's own requests to the
    /// server (handshake, listings, its event stream), from STS.
    pub async fn aws_connection(&self) -> Result<sigv4::AwsCredentials, CredentialError> {
        match &self.aws {
            Some(sts) => sts.for_control_plane(&self.minter, &self.name).await,
            None => Err(CredentialError::Sts(
                "the server's provider is not aws-sts".into(),
            )),
        }
    }

    /// The header the credential goes in, if not `Authorization`.
    pub fn header(&self) -> Option<&HeaderName> {
        self.header.as_ref()
    }

    /// The environment a stdio server gets to verify its credentials: the
    /// JWKS URL and the issuer (see `example-server`).
    pub fn child_env(&self) -> [(&str, &str); 2] {
        [
            (JWKS_URL_ENV, &self.jwks_url),
            (ISSUER_ENV, self.minter.issuer()),
        ]
    }
}

/// How an HTTP server gets its `aws-sts` credentials: requests signed
/// with them (SigV4), or else the credentials in headers.
pub struct AwsDelivery<'a> {
    pub signing: Option<sigv4::Signing<'a>>,
}

/// The environment variable that tells a stdio server where the control
/// plane publishes its public keys.
pub const JWKS_URL_ENV: &str = "MCP_CONTROL_PLANE_JWKS_URL";
/// The environment variable that tells a stdio server the issuer of the
/// credentials it receives.
pub const ISSUER_ENV: &str = "MCP_CONTROL_PLANE_ISSUER";

/// Every server's credential provider in one catalog version, indexed by
/// [`ServerId`].
pub struct Credentials {
    servers: Vec<Arc<ServerCredentials>>,
}

impl Credentials {
    /// Set up each server's provider. Secrets of `static` and token-exchange
    /// providers are read now, so a missing one refuses the catalog instead
    /// of failing calls later. A provider of `previous` whose configuration
    /// and secret are unchanged is kept, with its cache.
    pub fn open(
        catalog: &Catalog,
        base_dir: &Path,
        signer: &Signer,
        previous: Option<&Credentials>,
    ) -> Result<Self, SetupError> {
        let mut servers = Vec::with_capacity(catalog.servers().len());
        for spec in catalog.servers() {
            let secret_error = |problem: String| SetupError::Secret {
                server: spec.name.to_string(),
                problem,
            };
            let secret = match &spec.credential {
                CredentialConfig::Static(config) => Some(config.source()),
                CredentialConfig::OauthTokenExchange(config) => Some(config.client_secret.clone()),
                // The control plane's own Vault token.
                CredentialConfig::Vault(_) => (catalog.vault.as_ref()).map(|v| v.auth.source()),
                CredentialConfig::Jwt | CredentialConfig::None | CredentialConfig::AwsSts(_) => {
                    None
                }
            }
            .map(|source| source.read(base_dir).map_err(secret_error))
            .transpose()?;
            let secret_digest = secret.as_deref().map(|s| sha2::Sha256::digest(s).into());
            let kept = previous.and_then(|p| p.named(&spec.name)).filter(|old| {
                old.config == spec.credential
                    && old.secret_digest == secret_digest
                    && Arc::ptr_eq(&old.minter, &signer.minter)
            });
            if let Some(kept) = kept {
                servers.push(kept.clone());
                continue;
            }
            let mut aws = None;
            let provider: Box<dyn Provider> = match (&spec.credential, secret) {
                (CredentialConfig::Static(_), Some(secret)) => {
                    Box::new(provider::Static(Credential::new(secret)))
                }
                (CredentialConfig::OauthTokenExchange(config), Some(secret)) => {
                    Box::new(TokenExchange::new(config, secret).map_err(secret_error)?)
                }
                (CredentialConfig::AwsSts(config), _) => {
                    let sts = Arc::new(AwsSts::new(config).map_err(secret_error)?);
                    aws = Some(sts.clone());
                    Box::new(sts)
                }
                (CredentialConfig::Vault(config), Some(token)) => {
                    let vault = catalog.vault.as_ref().ok_or_else(|| {
                        secret_error("the `vault` provider needs the top-level `vault:`".into())
                    })?;
                    let provider = vault::VaultToken::new(vault, config, token, spec.timeout);
                    Box::new(provider.map_err(secret_error)?)
                }
                (CredentialConfig::None, _) => Box::new(provider::Nothing),
                _ => Box::new(provider::Jwt),
            };
            let header = match &spec.credential {
                CredentialConfig::Static(secret) => secret
                    .header
                    .as_deref()
                    .and_then(|h| HeaderName::try_from(h).ok()),
                CredentialConfig::Vault(vault) => {
                    let header = vault.header.as_deref().unwrap_or("x-vault-token");
                    HeaderName::try_from(header).ok()
                }
                _ => None,
            };
            servers.push(Arc::new(ServerCredentials {
                name: spec.name.clone(),
                config: spec.credential.clone(),
                provider,
                header,
                aws,
                secret_digest,
                minter: signer.minter.clone(),
                jwks_url: signer.jwks_url.clone(),
            }));
        }
        Ok(Self { servers })
    }

    /// The provider of `server`.
    pub fn server(&self, server: ServerId) -> &Arc<ServerCredentials> {
        &self.servers[server.0]
    }

    /// The digests of the secrets the providers were built with, in server
    /// order: a rotated secret makes a new catalog version.
    pub fn secret_digests(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.servers.iter().filter_map(|s| s.secret_digest.as_ref())
    }

    fn named(&self, name: &str) -> Option<&Arc<ServerCredentials>> {
        self.servers.iter().find(|s| &*s.name == name)
    }
}
