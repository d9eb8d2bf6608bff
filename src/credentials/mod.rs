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
//! - `none`: nothing.
//!
//! The agent's credential is never forwarded. Upstream transports deliver the
//! credential: `Authorization: Bearer` over HTTP, `_meta` over stdio.

pub mod keys;
pub mod mint;
mod provider;
mod token_exchange;

use std::path::Path;
use std::sync::Arc;

use axum::http::HeaderName;

use crate::catalog::{Catalog, ServerId};
use crate::config::CredentialConfig;
use crate::identity::Caller;
use mint::{Grant, KeySource, Minter};
use provider::Provider;
use token_exchange::TokenExchange;

pub use keys::KeyError;

/// The `_meta` key under which stdio upstreams receive their credential.
pub const META_KEY: &str = "mcp-control-plane/credential";

/// A credential for one upstream request. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Credential(Arc<str>);

impl Credential {
    pub fn new(secret: impl Into<Arc<str>>) -> Self {
        Self(secret.into())
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
}

/// Why the credential providers could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("servers.{server}.credential: {problem}")]
    Secret { server: String, problem: String },
}

/// Every server's credential provider, and the key that signs.
pub struct Credentials {
    minter: Arc<Minter>,
    /// Where the public keys are published, for stdio children.
    jwks_url: String,
    providers: Vec<Box<dyn Provider>>,
    /// Per server: the header its credential goes in, when not
    /// `Authorization: Bearer` (a static API key).
    headers: Vec<Option<HeaderName>>,
    names: Vec<Arc<str>>,
}

impl Credentials {
    /// Open the signing key and each server's provider. Secrets of `static`
    /// and token-exchange providers are read now, so a missing one stops the
    /// start instead of failing calls later.
    pub fn open(catalog: &Catalog, base_dir: &Path, jwks_url: String) -> Result<Self, SetupError> {
        let settings = &catalog.credentials;
        let source = KeySource {
            path: base_dir.join(&settings.key_file),
            algorithm: settings.algorithm,
        };
        let minter = Arc::new(Minter::open(&settings.issuer, settings.ttl, source)?);
        let mut providers = Vec::new();
        let mut headers = Vec::new();
        for spec in catalog.servers() {
            let secret_error = |problem: String| SetupError::Secret {
                server: spec.name.to_string(),
                problem,
            };
            let provider: Box<dyn Provider> = match &spec.credential {
                CredentialConfig::Jwt => Box::new(provider::Jwt),
                CredentialConfig::None => Box::new(provider::Nothing),
                CredentialConfig::Static(secret) => Box::new(provider::Static(Credential::new(
                    secret.source().read(base_dir).map_err(secret_error)?,
                ))),
                CredentialConfig::OauthTokenExchange(config) => {
                    Box::new(TokenExchange::new(config, base_dir).map_err(secret_error)?)
                }
            };
            providers.push(provider);
            headers.push(match &spec.credential {
                CredentialConfig::Static(secret) => secret
                    .header
                    .as_deref()
                    .and_then(|h| HeaderName::try_from(h).ok()),
                _ => None,
            });
        }
        Ok(Self {
            minter,
            jwks_url,
            providers,
            headers,
            names: catalog.servers().iter().map(|s| s.name.clone()).collect(),
        })
    }

    /// The credential for one call of `caller` to `scope` (a tool, or a
    /// prompt or resource) on `server`.
    pub async fn issue(
        &self,
        caller: &Caller,
        server: ServerId,
        scope: &str,
        trace_id: &str,
    ) -> Result<Option<Credential>, CredentialError> {
        let grant = Grant {
            agent: &caller.agent_id,
            role: &caller.role,
            server: &self.names[server.0],
            scope,
            trace_id,
        };
        self.providers[server.0].issue(&self.minter, &grant).await
    }

    /// The credential for the control plane's own requests to `server`
    /// (handshake, listings, its event stream).
    pub fn for_connection(&self, server: ServerId) -> Option<Credential> {
        self.providers[server.0].for_connection(&self.minter, &self.names[server.0])
    }

    /// The header `server`'s credential goes in, if not `Authorization`.
    pub fn header(&self, server: ServerId) -> Option<&HeaderName> {
        self.headers[server.0].as_ref()
    }

    /// The environment a stdio server gets to verify its credentials: the
    /// JWKS URL and the issuer (see `example-server`).
    pub fn child_env(&self) -> [(&str, &str); 2] {
        [
            (crate::example_servers::JWKS_URL_ENV, &self.jwks_url),
            (crate::example_servers::ISSUER_ENV, self.minter.issuer()),
        ]
    }

    pub fn minter(&self) -> &Arc<Minter> {
        &self.minter
    }
}
