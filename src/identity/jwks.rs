//! Verifying JWTs against a remote JWKS: the agents' tokens from an
//! identity provider, and (in the example servers) the credentials the
//! control plane mints.
//!
//! The key set is fetched once and cached. A token with a `kid` the cache
//! does not know triggers a refetch; once a refetch did not find the `kid`,
//! the next waits [`MIN_REFETCH`], so a flood of forged `kid`s cannot turn
//! into a flood of requests to the provider. If the key set cannot be had, tokens are refused: fail closed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;

/// After a refetch missed, unknown `kid`s refetch at most this often.
const MIN_REFETCH: Duration = Duration::from_secs(10);
/// A cached key set is refreshed when older than this.
const MAX_AGE: Duration = Duration::from_secs(300);
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest key set accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Why a token was refused. The agent sees none of this (only "invalid");
/// it is for operators' logs.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not a JWT")]
    Malformed,
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    #[error("no key with this kid")]
    UnknownKey,
    #[error("the key set is unavailable: {0}")]
    KeySetUnavailable(String),
    #[error("{0}")]
    Invalid(jsonwebtoken::errors::Error),
}

/// One usable public key.
struct Key {
    decoding: DecodingKey,
    /// The key's own `alg`, if it names one: a token must use exactly it.
    algorithm: Option<Algorithm>,
}

struct KeySet {
    keys: HashMap<String, Arc<Key>>,
    /// The key without a `kid`, when the set has exactly one key.
    only: Option<Arc<Key>>,
    fetched: Option<Instant>,
}

/// A JWKS URL and its cached keys.
pub struct RemoteJwks {
    url: String,
    http: reqwest::Client,
    set: ArcSwap<KeySet>,
    /// One fetch at a time; holds when a fetch last failed to find a
    /// requested `kid` (the rate limit applies only after such a miss, so
    /// a genuine key rotation is picked up at once).
    last_miss: tokio::sync::Mutex<Option<Instant>>,
}

impl RemoteJwks {
    pub fn new(url: String, http: reqwest::Client) -> Self {
        Self {
            url,
            http,
            set: ArcSwap::from_pointee(KeySet {
                keys: HashMap::new(),
                only: None,
                fetched: None,
            }),
            last_miss: tokio::sync::Mutex::new(None),
        }
    }

    /// Verify `token`'s signature with the key its header names and check
    /// its claims with `validation`; `accepted` are the algorithms allowed.
    pub async fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        accepted: &[Algorithm],
        validation: &Validation,
    ) -> Result<C, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        // Only asymmetric algorithms are ever accepted: `none` does not
        // parse at all, and an HS* token signed with a public key as the
        // secret is refused here, before any key is looked at.
        if !accepted.contains(&header.alg) || !is_asymmetric(header.alg) {
            return Err(VerifyError::Algorithm(header.alg));
        }
        let key = self.key(header.kid.as_deref()).await?;
        if key.algorithm.is_some_and(|alg| alg != header.alg) {
            return Err(VerifyError::Algorithm(header.alg));
        }
        let mut validation = validation.clone();
        validation.algorithms = vec![header.alg];
        jsonwebtoken::decode::<C>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(VerifyError::Invalid)
    }

    async fn key(&self, kid: Option<&str>) -> Result<Arc<Key>, VerifyError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut last_miss = self.last_miss.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let fresh = self
            .set
            .load()
            .fetched
            .is_some_and(|at| at.elapsed() < MAX_AGE);
        if fresh && last_miss.is_some_and(|at| at.elapsed() < MIN_REFETCH) {
            return Err(VerifyError::UnknownKey);
        }
        match self.fetch().await {
            Ok(set) => self.set.store(Arc::new(set)),
            Err(problem) => {
                tracing::warn!(jwks = %self.url, %problem, "cannot fetch the key set; refusing tokens that need it");
                return Err(VerifyError::KeySetUnavailable(problem));
            }
        }
        let found = lookup(&self.set.load(), kid);
        if found.is_none() {
            *last_miss = Some(Instant::now());
        }
        found.ok_or(VerifyError::UnknownKey)
    }

    /// The key for `kid` from a key set that is not too old.
    fn cached(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        let set = self.set.load();
        let fresh = set.fetched.is_some_and(|at| at.elapsed() < MAX_AGE);
        fresh.then(|| lookup(&set, kid)).flatten()
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let response = self
            .http
            .get(&self.url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading failed: {e}"))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err("the key set is too large".into());
        }
        parse_key_set(&body).ok_or_else(|| "not a JWK set".to_string())
    }
}

fn lookup(set: &KeySet, kid: Option<&str>) -> Option<Arc<Key>> {
    match kid {
        Some(kid) => set.keys.get(kid).cloned(),
        None => set.only.clone(),
    }
}

/// The usable signing keys of a JWKS document; keys of other kinds or uses
/// are skipped rather than failing the whole set.
fn parse_key_set(body: &[u8]) -> Option<KeySet> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(body).ok()?;
    let mut keys = HashMap::new();
    let mut all = Vec::new();
    for value in document.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let algorithm = match jwk.common.key_algorithm {
            Some(alg) => match signing_algorithm(alg) {
                Some(alg) => Some(alg),
                None => continue,
            },
            None => None,
        };
        let Ok(decoding) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        let key = Arc::new(Key {
            decoding,
            algorithm,
        });
        if let Some(kid) = jwk.common.key_id {
            keys.insert(kid, key.clone());
        }
        all.push(key);
    }
    let only = (all.len() == 1).then(|| all.remove(0));
    Some(KeySet {
        keys,
        only,
        fetched: Some(Instant::now()),
    })
}

fn is_asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// The JWS algorithm a JWK's `alg` names, if it is an asymmetric signature.
fn signing_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    use KeyAlgorithm as K;
    Some(match alg {
        K::RS256 => Algorithm::RS256,
        K::RS384 => Algorithm::RS384,
        K::RS512 => Algorithm::RS512,
        K::PS256 => Algorithm::PS256,
        K::PS384 => Algorithm::PS384,
        K::PS512 => Algorithm::PS512,
        K::ES256 => Algorithm::ES256,
        K::ES384 => Algorithm::ES384,
        K::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}
