//! Agents that present a JWT from an identity provider (an OIDC issuer).
//!
//! The token's `iss` picks the configured issuer (an unknown issuer is
//! refused); its signature is checked with that issuer's JWKS; `aud` must be
//! this control plane (no token passthrough: a token minted for some other
//! service is worth nothing here); `exp`/`nbf` are checked with the
//! configured clock skew. The agent id and the role come from configured
//! claims, and the role must be one the catalog defines.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use super::jwks::{RemoteJwks, VerifyError};
use super::{Caller, IdentityError, Refusal};
use crate::catalog::Catalog;
use crate::config::{IssuerConfig, JwtAlgorithm};

/// How long fetching the discovery document may take.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Issuer {
    name: Arc<str>,
    config: IssuerConfig,
    accepted: Vec<Algorithm>,
    validation: Validation,
    http: reqwest::Client,
    /// The control plane's resource identifier it was set up with.
    resource: Option<String>,
    /// Set once the JWKS URL is known (configured, or discovered).
    jwks: OnceCell<RemoteJwks>,
}

impl Issuer {
    pub fn new(
        name: &str,
        config: &IssuerConfig,
        resource: Option<&str>,
        http: reqwest::Client,
    ) -> Self {
        let accepted: Vec<Algorithm> = config.algorithms.iter().map(|a| algorithm(*a)).collect();
        let mut validation = Validation::new(accepted[0]);
        validation.set_issuer(&[&config.issuer]);
        // Validation guarantees one of them is set.
        let audience = config.audience.as_deref().or(resource).unwrap_or_default();
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = config.clock_skew.as_secs();
        Self {
            name: name.into(),
            config: config.clone(),
            accepted,
            validation,
            http,
            resource: resource.map(String::from),
            jwks: OnceCell::new(),
        }
    }

    /// Whether this issuer is the one `config` (under `name`, for
    /// `resource`) describes.
    pub fn configured_as(&self, name: &str, config: &IssuerConfig, resource: Option<&str>) -> bool {
        &*self.name == name && self.config == *config && self.resource.as_deref() == resource
    }

    /// The `iss` this issuer's tokens carry.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    pub fn scopes(&self) -> &[String] {
        &self.config.scopes
    }

    /// Verify `token` and derive the caller from its claims.
    pub async fn authenticate(
        &self,
        catalog: &Catalog,
        token: &str,
    ) -> Result<Caller, IdentityError> {
        // The detail (a discovery error, the role a claim named) is logged
        // for the operator; the record gets the refusal's kind.
        let refuse = |refusal: Refusal, why: &dyn std::fmt::Display| {
            tracing::info!(issuer = %self.name, reason = %why, "JWT refused");
            IdentityError::Invalid(refusal)
        };
        let jwks = self
            .jwks
            .get_or_try_init(|| self.locate_jwks())
            .await
            .map_err(|problem| refuse(Refusal::KeySetUnavailable, &problem))?;
        let claims: Map<String, Value> = jwks
            .verify(token, &self.accepted, &self.validation)
            .await
            .map_err(|error| match refusal(&error) {
                None => IdentityError::Expired,
                Some(refusal) => refuse(refusal, &error),
            })?;
        let agent: Arc<str> = claims
            .get(&self.config.agent_claim)
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                let why = format!("no `{}` claim", self.config.agent_claim);
                refuse(Refusal::NoAgent, &why)
            })?
            .into();
        let role = self
            .role(catalog, claims.get(&self.config.role.claim))
            .map_err(|(refusal, why)| refuse(refusal, &why))?;
        Ok(Caller {
            agent_id: agent,
            role,
            claims: Some(Arc::new(claims)),
        })
    }

    /// The role the role claim gives: directly, or through the map.
    fn role(
        &self,
        catalog: &Catalog,
        claim: Option<&Value>,
    ) -> Result<Arc<str>, (Refusal, String)> {
        let values: Vec<&str> = match claim {
            Some(Value::String(value)) => vec![value],
            Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).collect(),
            _ => {
                let why = format!("no `{}` claim", self.config.role.claim);
                return Err((Refusal::NoRole, why));
            }
        };
        let map = &self.config.role.map;
        let mut roles = values.into_iter().filter_map(|value| {
            if map.is_empty() {
                Some(value)
            } else {
                map.get(value).map(String::as_str)
            }
        });
        let role = (roles.next()).ok_or((Refusal::NoRole, Refusal::NoRole.to_string()))?;
        if roles.any(|other| other != role) {
            return Err((Refusal::TwoRoles, Refusal::TwoRoles.to_string()));
        }
        catalog
            .role_name(role)
            .ok_or_else(|| (Refusal::UnknownRole, format!("unknown role `{role}`")))
    }

    /// The configured JWKS URL, or the one the discovery document names.
    async fn locate_jwks(&self) -> Result<RemoteJwks, String> {
        if let Some(url) = &self.config.jwks_url {
            return Ok(RemoteJwks::new(url.clone(), self.http.clone()));
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let fetch = async {
            let response = self
                .http
                .get(&url)
                .timeout(DISCOVERY_TIMEOUT)
                .send()
                .await?;
            response.error_for_status()?.bytes().await
        };
        let body = fetch.await.map_err(|e| format!("discovery failed: {e}"))?;
        let document: Value = serde_json::from_slice(&body)
            .map_err(|_| "the discovery document is not JSON".to_string())?;
        // OpenID Connect Discovery: the document must name the same issuer.
        if document["issuer"].as_str() != Some(&self.config.issuer) {
            return Err("the discovery document names another issuer".into());
        }
        let jwks_uri = document["jwks_uri"]
            .as_str()
            .ok_or("the discovery document has no jwks_uri")?;
        Ok(RemoteJwks::new(jwks_uri.to_string(), self.http.clone()))
    }
}

/// The refusal a verification failure is; `None` for an expired token,
/// which the agent is told about (it can fetch a new one).
fn refusal(error: &VerifyError) -> Option<Refusal> {
    use jsonwebtoken::errors::ErrorKind;
    Some(match error {
        VerifyError::Malformed => Refusal::Malformed,
        VerifyError::Algorithm(_) => Refusal::Algorithm,
        VerifyError::UnknownKey => Refusal::UnknownKey,
        VerifyError::KeySetUnavailable(_) => Refusal::KeySetUnavailable,
        VerifyError::Invalid(e) => match e.kind() {
            ErrorKind::ExpiredSignature => return None,
            ErrorKind::InvalidSignature => Refusal::Signature,
            ErrorKind::InvalidIssuer => Refusal::Issuer,
            ErrorKind::InvalidAudience => Refusal::Audience,
            ErrorKind::ImmatureSignature => Refusal::NotYetValid,
            ErrorKind::InvalidAlgorithm => Refusal::Algorithm,
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) => {
                Refusal::Malformed
            }
            _ => Refusal::Claims,
        },
    })
}

fn algorithm(algorithm: JwtAlgorithm) -> Algorithm {
    match algorithm {
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::RS384 => Algorithm::RS384,
        JwtAlgorithm::RS512 => Algorithm::RS512,
        JwtAlgorithm::PS256 => Algorithm::PS256,
        JwtAlgorithm::PS384 => Algorithm::PS384,
        JwtAlgorithm::PS512 => Algorithm::PS512,
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::ES384 => Algorithm::ES384,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

/// The unverified `iss` of a JWT, to pick the issuer that must verify it.
pub fn claimed_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Claims {
        iss: String,
    }
    serde_json::from_slice::<Claims>(&bytes).ok().map(|c| c.iss)
}
