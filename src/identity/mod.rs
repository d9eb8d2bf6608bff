//! Identity: who is calling.
//!
//! An agent proves who it is with a bearer credential: a service token, or
//! a JWT from a configured identity provider ([`oidc`]). For service tokens
//! the catalog stores only each token's SHA-256; we hash what the caller
//! sends and compare against every agent in constant time, so neither the
//! token nor the position of a match leaks through timing. The caller's role
//! comes from this verified identity and nothing else.

pub mod jwks;
pub mod oidc;

use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::catalog::Catalog;
use crate::config::IdentitySettings;

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub agent_id: Arc<str>,
    pub role: Arc<str>,
    /// The verified claims of a JWT identity (policies may read them).
    pub claims: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
}

/// Why a caller could not be authenticated. Deliberately coarse for the
/// agent, which learns only that its credential was not accepted; the
/// precise [`Refusal`] of an invalid one is for the audit record and log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("missing bearer credential")]
    Missing,
    #[error("invalid bearer credential")]
    Invalid(Refusal),
    #[error("the bearer credential has been revoked")]
    Revoked,
    #[error("the bearer credential has expired")]
    Expired,
    #[error("more than one Authorization header; send exactly one")]
    Ambiguous,
}

/// Why an invalid credential was refused: recorded in the audit record's
/// `reasons` and logged, never told to the agent. Names no secret and no
/// claim value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no agent has this token")]
    UnknownToken,
    #[error("not a well-formed JWT")]
    Malformed,
    #[error("the token's issuer is not configured")]
    UnknownIssuer,
    #[error("the issuer's key set is unavailable")]
    KeySetUnavailable,
    #[error("the signing algorithm is not accepted")]
    Algorithm,
    #[error("the issuer publishes no key with this kid")]
    UnknownKey,
    #[error("the signature does not verify")]
    Signature,
    #[error("the token names another issuer")]
    Issuer,
    #[error("the token is for another audience")]
    Audience,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("a required claim is missing or malformed")]
    Claims,
    #[error("the token has no agent claim")]
    NoAgent,
    #[error("no role claim value names a role")]
    NoRole,
    #[error("the role claim names more than one role")]
    TwoRoles,
    #[error("the role claim names a role the catalog does not have")]
    UnknownRole,
}

/// Extract the token from an `Authorization` header value (`Bearer <token>`,
/// scheme case-insensitive).
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// What a front door hands the pipeline about who is calling.
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    /// A bearer credential still to be checked (or none).
    Bearer(Option<&'a str>),
    /// A caller the front door already authenticated for this HTTP request
    /// (the MCP guard does, before any message is read).
    Verified(&'a Caller),
}

/// Checks bearer credentials: service tokens (against the catalog of the
/// request), and JWTs of the configured issuers.
pub struct Authenticator {
    issuers: Vec<Arc<oidc::Issuer>>,
}

impl Authenticator {
    /// The issuers `identity` configures. Those of `previous` configured
    /// the same way are kept, with the keys they fetched.
    pub fn new(identity: &IdentitySettings, previous: Option<&Authenticator>) -> Self {
        let http = crate::outbound::client().build().unwrap_or_default();
        let resource = identity.resource.as_deref();
        let issuers = identity
            .issuers
            .iter()
            .map(|(name, config)| {
                let kept = previous.and_then(|p| {
                    p.issuers
                        .iter()
                        .find(|issuer| issuer.configured_as(name, config, resource))
                });
                match kept {
                    Some(issuer) => issuer.clone(),
                    None => Arc::new(oidc::Issuer::new(name, config, resource, http.clone())),
                }
            })
            .collect();
        Self { issuers }
    }

    pub fn issuers(&self) -> &[Arc<oidc::Issuer>] {
        &self.issuers
    }

    pub async fn authenticate(
        &self,
        catalog: &Catalog,
        token: Option<&str>,
    ) -> Result<Caller, IdentityError> {
        let token = token.ok_or(IdentityError::Missing)?;
        // Service tokens never contain two dots; JWTs always do.
        if !self.issuers.is_empty() && token.bytes().filter(|b| *b == b'.').count() == 2 {
            let claimed =
                oidc::claimed_issuer(token).ok_or(IdentityError::Invalid(Refusal::Malformed))?;
            let issuer = self
                .issuers
                .iter()
                .find(|issuer| issuer.issuer() == claimed)
                .ok_or_else(|| {
                    tracing::info!("JWT from an issuer that is not configured refused");
                    IdentityError::Invalid(Refusal::UnknownIssuer)
                })?;
            return issuer.authenticate(catalog, token).await;
        }
        authenticate_service_token(catalog, Some(token))
    }
}

/// Authenticate a service token against the catalog's agents.
pub fn authenticate_service_token(
    catalog: &Catalog,
    token: Option<&str>,
) -> Result<Caller, IdentityError> {
    let token = token.ok_or(IdentityError::Missing)?;
    let agent = catalog
        .agent_by_token_sha256(&digest(token))
        .ok_or(IdentityError::Invalid(Refusal::UnknownToken))?;
    if agent.revoked {
        return Err(IdentityError::Revoked);
    }
    if agent
        .expires
        .is_some_and(|expires| expires <= SystemTime::now())
    {
        return Err(IdentityError::Expired);
    }
    Ok(Caller {
        agent_id: agent.id.clone(),
        role: agent.role.clone(),
        claims: None,
    })
}

/// Authenticate an administrator's token (admins only read the audit
/// trail; their tokens are not agents' tokens). Returns the admin's id.
pub fn authenticate_admin(
    catalog: &Catalog,
    token: Option<&str>,
) -> Result<Arc<str>, IdentityError> {
    let token = token.ok_or(IdentityError::Missing)?;
    catalog
        .admin_by_token_sha256(&digest(token))
        .cloned()
        .ok_or(IdentityError::Invalid(Refusal::UnknownToken))
}

/// The SHA-256 of a token: what the catalog stores and looks agents up by.
/// A lookup by digest (a hash map, one probe whatever the number of agents)
/// needs no constant-time comparison: how long it takes can tell only how
/// a presented token's digest relates to a stored one, and turning that
/// into a token takes a SHA-256 preimage.
fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Lower-case hex SHA-256 of a token: the value to put in `token_sha256`.
pub fn token_sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use std::path::Path;

    fn catalog() -> Catalog {
        let yaml = format!(
            "environment: test\nroles: {{analyst: []}}\nagents:\n  a1: {{role: analyst, token_sha256: {}}}\n",
            token_sha256_hex("secret-1")
        );
        let file = parse_str(&yaml, false, Path::new("t.yaml")).unwrap();
        Catalog::compile(&file, Path::new("."))
    }

    #[test]
    fn parses_bearer_scheme_case_insensitively() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn accepts_known_token_and_refuses_others() {
        let catalog = catalog();
        let caller = authenticate_service_token(&catalog, Some("secret-1")).unwrap();
        assert_eq!(&*caller.agent_id, "a1");
        assert_eq!(&*caller.role, "analyst");
        assert_eq!(
            authenticate_service_token(&catalog, Some("secret-2")),
            Err(IdentityError::Invalid(Refusal::UnknownToken))
        );
        assert_eq!(
            authenticate_service_token(&catalog, None),
            Err(IdentityError::Missing)
        );
    }

    #[test]
    fn revoked_and_expired_tokens_are_refused() {
        let yaml = format!(
            "environment: test\nroles: {{analyst: []}}\nagents:\n  \
             old: {{role: analyst, token_sha256: {}, revoked: true}}\n  \
             gone: {{role: analyst, token_sha256: {}, expires: \"2020-01-01T00:00:00Z\"}}\n  \
             kept: {{role: analyst, token_sha256: {}, expires: \"2999-01-01T00:00:00Z\"}}\n",
            token_sha256_hex("old-token"),
            token_sha256_hex("gone-token"),
            token_sha256_hex("kept-token"),
        );
        let file = parse_str(&yaml, false, Path::new("t.yaml")).unwrap();
        let catalog = Catalog::compile(&file, Path::new("."));
        assert_eq!(
            authenticate_service_token(&catalog, Some("old-token")),
            Err(IdentityError::Revoked)
        );
        assert_eq!(
            authenticate_service_token(&catalog, Some("gone-token")),
            Err(IdentityError::Expired)
        );
        assert_eq!(
            &*authenticate_service_token(&catalog, Some("kept-token"))
                .unwrap()
                .agent_id,
            "kept"
        );
    }

    #[test]
    fn hash_matches_sha256sum() {
        // printf %s analyst-demo-token | sha256sum
        assert_eq!(
            token_sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
