//! The `oauth-token-exchange` provider: RFC 8693 against a token endpoint.
//!
//! The control plane mints its usual per-call JWT and presents it as the
//! subject token; the endpoint (Vault, a cloud STS, an enterprise IdP)
//! answers with an access token for the server, which is what the server
//! gets. Answers are cached per agent and scope while they are valid, so
//! a busy agent does not cost one exchange per call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use futures::future::BoxFuture;

use super::mint::{Grant, Minter};
use super::provider::Provider;
use super::{Credential, CredentialError};
use crate::config::TokenExchangeConfig;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// How long an exchange may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Cached tokens are dropped this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// Beyond this many cached tokens the cache starts over.
const CACHE_LIMIT: usize = 10_000;

pub(super) struct TokenExchange {
    endpoint: String,
    client_id: String,
    client_secret: String,
    audience: Option<String>,
    http: reqwest::Client,
    /// (agent, scope) -> token and when to stop using it.
    cache: Mutex<HashMap<(String, String), (Credential, Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenExchange {
    /// The exchange `config` describes, with its client secret as read.
    pub(super) fn new(config: &TokenExchangeConfig, client_secret: String) -> Result<Self, String> {
        Ok(Self {
            endpoint: config.token_endpoint.clone(),
            client_id: config.client_id.clone(),
            client_secret,
            audience: config.audience.clone(),
            http: crate::outbound::client()
                .timeout(TIMEOUT)
                .build()
                .map_err(|e| e.to_string())?,
            cache: Mutex::default(),
        })
    }

    async fn exchange(
        &self,
        minter: &Minter,
        grant: &Grant<'_>,
    ) -> Result<Credential, CredentialError> {
        let key = (grant.agent.to_string(), grant.scope.to_string());
        if let Some(cached) = self.cached(&key) {
            return Ok(cached);
        }
        let subject_token = minter.mint(grant);
        let audience = self.audience.as_deref().unwrap_or(grant.server);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", GRANT_TYPE)
            .append_pair("subject_token", &subject_token)
            .append_pair("subject_token_type", JWT_TOKEN_TYPE)
            .append_pair("requested_token_type", ACCESS_TOKEN_TYPE)
            .append_pair("audience", audience)
            .append_pair("scope", grant.scope)
            .finish();
        let failed = |what: String| CredentialError::Exchange(what);
        let response = self
            .http
            .post(&self.endpoint)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            // Without the URL: reqwest's error text would carry it.
            .map_err(|e| failed(format!("request failed ({})", kind(&e))))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| failed(format!("reading the answer failed ({})", kind(&e))))?;
        if !status.is_success() {
            return Err(failed(format!("the token endpoint answered {status}")));
        }
        let answer: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|_| failed("the answer is not a token response".into()))?;
        let credential = Credential::new(answer.access_token);
        if let Some(lifetime) = answer.expires_in.map(Duration::from_secs)
            && lifetime > EXPIRY_MARGIN
        {
            let until = Instant::now() + lifetime - EXPIRY_MARGIN;
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, (credential.clone(), until));
        }
        Ok(credential)
    }

    fn cached(&self, key: &(String, String)) -> Option<Credential> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(credential, _)| credential.clone())
    }
}

impl Provider for TokenExchange {
    fn issue<'a>(
        &'a self,
        minter: &'a Minter,
        grant: &'a Grant<'a>,
    ) -> BoxFuture<'a, Result<Option<Credential>, CredentialError>> {
        Box::pin(async move { self.exchange(minter, grant).await.map(Some) })
    }

    /// The endpoint issues tokens for agents' calls only.
    fn for_connection(&self, _minter: &Minter, _server: &str) -> Option<Credential> {
        None
    }
}

fn kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "transport error"
    }
}
