//! Minting the per-call JWT, and the key ring behind it.
//!
//! The ring holds the current key (which signs) and keys that were replaced
//! but may still have unexpired tokens out (which are only published). It is
//! an immutable snapshot behind an atomic pointer: minting reads it without a
//! lock, a rotation swaps in a new one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use serde::Serialize;
use serde_json::{Value, json};

use super::keys::{self, KeyError, SigningKey};
use crate::config::{KeyAlgorithm, MAX_TTL};

/// How long a replaced key stays published: past the longest lifetime of
/// a token it signed, plus room for verifiers' clock skew.
const RETIRED_KEY_GRACE: Duration = Duration::from_secs(MAX_TTL.as_secs() + 60);

/// What a minted credential says: who, for which server, for which tool.
pub struct Grant<'a> {
    pub agent: &'a str,
    pub role: &'a str,
    /// The logical upstream server (the token's audience).
    pub server: &'a str,
    /// The one tool (or prompt, or resource) the token is good for.
    pub scope: &'a str,
    /// The W3C trace id of the call, so the upstream can join the trace.
    pub trace_id: &'a str,
}

impl<'a> Grant<'a> {
    /// The grant of the control plane's own requests to `server`
    /// (handshake, listings, its event stream): its issuer as the subject,
    /// no role, no tool.
    pub fn for_control_plane(issuer: &'a str, server: &'a str) -> Self {
        Self {
            agent: issuer,
            role: "",
            server,
            scope: "",
            trace_id: "",
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    scope: &'a str,
    role: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
    trace_id: &'a str,
}

/// The published keys and the one that signs.
pub struct Keyring {
    current: SigningKey,
    /// Replaced keys' public JWKs, each with when it may be dropped.
    retired: Vec<(Value, SystemTime)>,
    /// The JWKS document, serialized once.
    jwks: Arc<str>,
}

impl Keyring {
    fn new(current: SigningKey, retired: Vec<(Value, SystemTime)>) -> Self {
        let now = SystemTime::now();
        let retired: Vec<_> = retired
            .into_iter()
            .filter(|(_, until)| *until > now)
            .collect();
        let keys: Vec<&Value> = std::iter::once(current.public_jwk())
            .chain(retired.iter().map(|(jwk, _)| jwk))
            .collect();
        let jwks = json!({ "keys": keys }).to_string().into();
        Self {
            current,
            retired,
            jwks,
        }
    }

    /// This ring with `next` signing from now on, and the current key kept
    /// published until its tokens have expired.
    fn rotated(&self, next: SigningKey) -> Self {
        let mut retired = self.retired.clone();
        retired.push((
            self.current.public_jwk().clone(),
            SystemTime::now() + RETIRED_KEY_GRACE,
        ));
        Self::new(next, retired)
    }
}

/// Where the signing key lives and how it signs.
#[derive(Debug, Clone)]
pub struct KeySource {
    pub path: PathBuf,
    pub algorithm: KeyAlgorithm,
}

impl KeySource {
    /// Where `keys rotate` keeps the key it replaced.
    pub fn previous_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".previous");
        PathBuf::from(name)
    }
}

/// Signs per-call credentials.
pub struct Minter {
    issuer: Arc<str>,
    ttl: Duration,
    source: KeySource,
    ring: ArcSwap<Keyring>,
}

impl Minter {
    /// Load (or generate) the signing key, and publish the key `keys rotate`
    /// replaced while tokens it signed may still be valid.
    pub fn open(issuer: &str, ttl: Duration, source: KeySource) -> Result<Self, KeyError> {
        let current = keys::load_or_generate(&source.path, source.algorithm)?;
        let retired = previous_key(&source.previous_path()).into_iter().collect();
        Ok(Self {
            issuer: issuer.into(),
            ttl: ttl.min(MAX_TTL),
            source,
            ring: ArcSwap::from_pointee(Keyring::new(current, retired)),
        })
    }

    /// One signed credential for `grant`, valid for the configured lifetime.
    pub fn mint(&self, grant: &Grant<'_>) -> String {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let jti: [u8; 16] = rand::random();
        let claims = Claims {
            iss: &self.issuer,
            sub: grant.agent,
            aud: grant.server,
            scope: grant.scope,
            role: grant.role,
            iat,
            exp: iat + self.ttl.as_secs().max(1),
            jti: hex::encode(jti),
            trace_id: grant.trace_id,
        };
        // Serializing a struct of strings and integers cannot fail.
        let claims = serde_json::to_vec(&claims).unwrap_or_default();
        self.ring.load().current.sign_jwt(&claims)
    }

    /// The JWKS document (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> Arc<str> {
        self.ring.load().jwks.clone()
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn current_kid(&self) -> String {
        self.ring.load().current.kid().to_string()
    }

    /// Re-read the key file; if it now holds another key, sign with that one
    /// and keep publishing the old one until its tokens have expired.
    /// Returns whether the key changed.
    pub fn reload(&self) -> Result<bool, KeyError> {
        let next = keys::load(&self.source.path)?;
        let ring = self.ring.load();
        if next.kid() == ring.current.kid() {
            return Ok(false);
        }
        tracing::info!(
            kid = next.kid(),
            previous = ring.current.kid(),
            "signing key rotated"
        );
        self.ring.store(Arc::new(ring.rotated(next)));
        Ok(true)
    }

    /// Check the key file every `every` and pick up a rotation.
    pub fn watch(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let minter = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(minter) = minter.upgrade() else {
                    return;
                };
                let reloaded = tokio::task::spawn_blocking(move || minter.reload()).await;
                if let Ok(Err(error)) = reloaded {
                    tracing::error!(%error, "cannot reload the signing key; still signing with the old one");
                }
            }
        })
    }
}

/// The public key `keys rotate` replaced, if it was replaced recently enough
/// that tokens it signed may still be valid.
fn previous_key(path: &Path) -> Option<(Value, SystemTime)> {
    let replaced = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    let until = replaced + RETIRED_KEY_GRACE;
    if until <= SystemTime::now() {
        return None;
    }
    let key = keys::load(path).ok()?;
    Some((key.public_jwk().clone(), until))
}

/// Replace the key at `source` with a new one, keeping the old one beside
/// it (as `<file>.previous`) so a restarted control plane still publishes it.
pub fn rotate(source: &KeySource) -> Result<SigningKey, KeyError> {
    if source.path.exists() {
        // Refuse to rotate away from a file that holds no key: it is
        // probably not the file the operator meant.
        keys::load(&source.path)?;
        let old = std::fs::read(&source.path).map_err(|e| keys::io_error(&source.path, e))?;
        keys::write_owner_only(&source.previous_path(), &old)?;
    }
    let (key, der) = SigningKey::generate(source.algorithm)?;
    keys::write_private(&source.path, &der)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    fn grant() -> Grant<'static> {
        Grant {
            agent: "a1",
            role: "analyst",
            server: "marketdata",
            scope: "read_positions",
            trace_id: "0af7651916cd43dd8448eb211c80319c",
        }
    }

    fn verify(minter: &Minter, token: &str) -> serde_json::Value {
        let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
        let jwks: serde_json::Value = serde_json::from_str(&minter.jwks()).unwrap();
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str())
            .expect("the signing key is published");
        let jwk: Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&["marketdata"]);
        validation.set_issuer(&["cp"]);
        jsonwebtoken::decode(token, &DecodingKey::from_jwk(&jwk).unwrap(), &validation)
            .unwrap()
            .claims
    }

    #[test]
    fn minted_tokens_verify_and_carry_the_grant_with_a_capped_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let source = KeySource {
            path: dir.path().join("k.pem"),
            algorithm: KeyAlgorithm::EdDSA,
        };
        // A configured lifetime above the hard maximum is capped.
        let minter = Minter::open("cp", Duration::from_secs(3600), source).unwrap();
        let claims = verify(&minter, &minter.mint(&grant()));
        assert_eq!(claims["sub"], "a1");
        assert_eq!(claims["scope"], "read_positions");
        assert_eq!(claims["trace_id"], "0af7651916cd43dd8448eb211c80319c");
        let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
        assert_eq!(lifetime, MAX_TTL.as_secs());
    }

    #[test]
    fn rotation_signs_with_the_new_key_and_keeps_the_old_one_published() {
        let dir = tempfile::tempdir().unwrap();
        let source = KeySource {
            path: dir.path().join("k.pem"),
            algorithm: KeyAlgorithm::EdDSA,
        };
        let minter = Minter::open("cp", Duration::from_secs(60), source.clone()).unwrap();
        let before = minter.mint(&grant());
        assert!(!minter.reload().unwrap(), "nothing changed yet");
        let new_key = rotate(&source).unwrap();
        assert!(minter.reload().unwrap());
        assert_eq!(minter.current_kid(), new_key.kid());
        let after = minter.mint(&grant());
        verify(&minter, &before);
        verify(&minter, &after);
        // A restarted control plane still publishes the replaced key.
        let restarted = Minter::open("cp", Duration::from_secs(60), source).unwrap();
        verify(&restarted, &before);
        verify(&restarted, &after);
    }
}
