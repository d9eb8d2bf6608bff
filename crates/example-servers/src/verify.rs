//! How the example servers check the credential the control plane minted
//! for each call: signed by a key in the control plane's JWKS, issued by it,
//! for this server (`aud`), for the tool being called (`scope`), unexpired.
//! This is what any MCP server behind the control plane can do, offline,
//! with a stock JWT library: nothing here comes from the control plane's
//! own code, only its published contract (the names below).

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rmcp::ErrorData;
use rmcp::RoleServer;
use rmcp::model::ErrorCode;
use rmcp::service::RequestContext;
use serde::Deserialize;
use tokio::sync::Mutex;

/// The JSON-RPC error a refused credential gets.
pub const CREDENTIAL_REFUSED: ErrorCode = ErrorCode(-32001);

/// Where the control plane tells its stdio children its JWKS URL.
pub const JWKS_URL_ENV: &str = "MCP_CONTROL_PLANE_JWKS_URL";
/// Where the control plane tells its stdio children its issuer.
pub const ISSUER_ENV: &str = "MCP_CONTROL_PLANE_ISSUER";
/// The `_meta` key a stdio server receives its credential under (an HTTP
/// server gets it as `Authorization: Bearer`).
pub const CREDENTIAL_META_KEY: &str = "mcp-control-plane/credential";

/// The algorithms the control plane signs with.
const ACCEPTED: [Algorithm; 2] = [Algorithm::EdDSA, Algorithm::ES256];

pub struct CredentialCheck {
    jwks_url: String,
    http: reqwest::Client,
    /// The key set as last fetched; fetched again when a token names a key
    /// it lacks (the control plane rotated its key). A production server
    /// would also bound how often that may happen.
    keys: Mutex<Option<JwkSet>>,
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
            jwks_url: jwks_url.to_string(),
            http: reqwest::Client::new(),
            keys: Mutex::new(None),
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
        let bearer = super::request_header(context, "authorization").and_then(|header| {
            let (scheme, token) = header.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
        let token = bearer
            .or_else(|| {
                context
                    .meta
                    .get(CREDENTIAL_META_KEY)
                    .and_then(|v| v.as_str())
            })
            .ok_or_else(|| refused("none presented"))?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| refused("malformed"))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(refused("unexpected algorithm"));
        }
        let key = self
            .key(header.kid.as_deref())
            .await
            .map_err(|why| refused(&why))?;
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|error| refused(&error.to_string()))?
            .claims;
        if claims.scope != tool {
            return Err(refused("not issued for this tool"));
        }
        Ok(())
    }

    /// The published key `kid`, fetching the key set when it is not known.
    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, String> {
        let kid = kid.ok_or("no key id")?;
        let mut keys = self.keys.lock().await;
        let known = |set: &Option<JwkSet>| set.as_ref().and_then(|set| set.find(kid).cloned());
        let jwk = match known(&keys) {
            Some(jwk) => jwk,
            None => {
                let fetched: JwkSet = (self.http.get(&self.jwks_url).send().await)
                    .and_then(|response| response.error_for_status())
                    .map_err(|e| format!("cannot fetch the key set: {e}"))?
                    .json()
                    .await
                    .map_err(|e| format!("cannot read the key set: {e}"))?;
                *keys = Some(fetched);
                known(&keys).ok_or("unknown key")?
            }
        };
        DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())
    }
}
