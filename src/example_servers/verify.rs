//! How the example servers check the credential the control plane minted
//! for each call: signed by a key in the control plane's JWKS, issued by it,
//! for this server (`aud`), for the tool being called (`scope`), unexpired.
//! This is what any MCP server behind the control plane can do, offline.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};
use rmcp::ErrorData;
use rmcp::RoleServer;
use rmcp::model::ErrorCode;
use rmcp::service::RequestContext;
use serde::Deserialize;

use crate::credentials::META_KEY;
use crate::identity::jwks::RemoteJwks;

/// The JSON-RPC error a refused credential gets.
pub const CREDENTIAL_REFUSED: ErrorCode = ErrorCode(-32001);

/// Where the control plane tells its stdio children its JWKS URL and issuer.
pub const JWKS_URL_ENV: &str = "MCP_CONTROL_PLANE_JWKS_URL";
pub const ISSUER_ENV: &str = "MCP_CONTROL_PLANE_ISSUER";

pub struct CredentialCheck {
    jwks: RemoteJwks,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    scope: String,
}

impl CredentialCheck {
    /// Accept tokens from `issuer` for `audience`, signed by a key at `jwks_url`.
    pub fn new(jwks_url: &str, issuer: &str, audience: &str) -> Arc<Self> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Arc::new(Self {
            jwks: RemoteJwks::new(jwks_url.to_string(), reqwest::Client::new()),
            validation,
        })
    }

    /// Check the credential of a call of `tool`: from `Authorization` over
    /// HTTP, from `_meta` over stdio.
    pub async fn check(
        &self,
        context: &RequestContext<RoleServer>,
        tool: &str,
    ) -> Result<(), ErrorData> {
        let refused = |why: &str| {
            ErrorData::new(
                CREDENTIAL_REFUSED,
                format!("credential refused: {why}"),
                None,
            )
        };
        let token = super::request_header(context, "authorization")
            .and_then(crate::identity::bearer_token)
            .or_else(|| context.meta.get(META_KEY).and_then(|v| v.as_str()))
            .ok_or_else(|| refused("none presented"))?;
        let claims: Claims = self
            .jwks
            .verify(
                token,
                &[Algorithm::EdDSA, Algorithm::ES256],
                &self.validation,
            )
            .await
            .map_err(|error| refused(&error.to_string()))?;
        if claims.scope != tool {
            return Err(refused("not issued for this tool"));
        }
        Ok(())
    }
}
