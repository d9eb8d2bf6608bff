//! The control plane's signing keys.
//!
//! A key is parsed once, when it is loaded, so minting is a signature and
//! nothing else. Keys come from a file (PKCS#8 PEM, as `openssl genpkey`
//! writes, or a private JWK) or are generated at first start and written
//! owner-only. Each key is published as a public JWK whose `kid` is its
//! RFC 7638 thumbprint, so the same key always has the same id.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::KeyAlgorithm;

/// Why a key could not be loaded, generated or stored.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the key file {0} holds no usable Ed25519 or P-256 private key (PKCS#8 PEM or JWK)")]
    Unusable(String),
    #[error("cannot generate a key")]
    Generate,
}

enum Pair {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
}

/// One private key, ready to sign.
pub struct SigningKey {
    pair: Pair,
    kid: String,
    /// The public half as a JWK (with `kid`, `alg` and `use`).
    public_jwk: Value,
    /// `base64url(header) + "."`, the constant start of every token.
    header_prefix: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key, with its PKCS#8 DER encoding for storing.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<(Self, Vec<u8>), KeyError> {
        let rng = SystemRandom::new();
        let der = match algorithm {
            KeyAlgorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng),
            KeyAlgorithm::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            }
        }
        .map_err(|_| KeyError::Generate)?;
        let key = Self::from_pkcs8(der.as_ref()).ok_or(KeyError::Generate)?;
        Ok((key, der.as_ref().to_vec()))
    }

    /// Parse a PKCS#8 DER private key (Ed25519 or P-256).
    pub fn from_pkcs8(der: &[u8]) -> Option<Self> {
        let rng = SystemRandom::new();
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Some(Self::new(Pair::Ed(pair), rng));
        }
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .ok()
            .map(|pair| Self::new(Pair::Ec(pair), rng))
    }

    /// Parse a private JWK (`OKP`/`Ed25519` or `EC`/`P-256`, with `d`).
    pub fn from_jwk(jwk: &Value) -> Option<Self> {
        let field = |name: &str| {
            jwk.get(name)
                .and_then(Value::as_str)
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
        };
        let rng = SystemRandom::new();
        let (d, x) = (field("d")?, field("x")?);
        match (jwk.get("kty")?.as_str()?, jwk.get("crv")?.as_str()?) {
            ("OKP", "Ed25519") => Ed25519KeyPair::from_seed_and_public_key(&d, &x)
                .ok()
                .map(|pair| Self::new(Pair::Ed(pair), rng)),
            ("EC", "P-256") => {
                let public = [&[4u8][..], &x, &field("y")?].concat();
                EcdsaKeyPair::from_private_key_and_public_key(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &d,
                    &public,
                    &rng,
                )
                .ok()
                .map(|pair| Self::new(Pair::Ec(pair), rng))
            }
            _ => None,
        }
    }

    fn new(pair: Pair, rng: SystemRandom) -> Self {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        // RFC 7638: the thumbprint hashes the required members in
        // lexicographic order, without whitespace.
        let (algorithm, mut public_jwk, thumbprint_input) = match &pair {
            Pair::Ed(pair) => {
                let x = b64(pair.public_key().as_ref());
                let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x});
                (KeyAlgorithm::EdDSA, jwk, canonical)
            }
            Pair::Ec(pair) => {
                let point = pair.public_key().as_ref();
                let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
                let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
                let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
                (KeyAlgorithm::ES256, jwk, canonical)
            }
        };
        let kid = b64(&Sha256::digest(thumbprint_input.as_bytes()));
        public_jwk["kid"] = json!(kid);
        public_jwk["alg"] = json!(algorithm.jws_name());
        public_jwk["use"] = json!("sig");
        let header = json!({"alg": algorithm.jws_name(), "typ": "JWT", "kid": kid});
        let header_prefix = format!("{}.", b64(header.to_string().as_bytes()));
        Self {
            pair,
            kid,
            public_jwk,
            header_prefix,
            rng,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// A compact JWS of `claims` (already JSON): `header.claims.signature`.
    pub fn sign_jwt(&self, claims: &[u8]) -> String {
        let mut token =
            String::with_capacity(self.header_prefix.len() + claims.len() * 4 / 3 + 100);
        token.push_str(&self.header_prefix);
        URL_SAFE_NO_PAD.encode_string(claims, &mut token);
        let signature = match &self.pair {
            Pair::Ed(pair) => pair.sign(token.as_bytes()).as_ref().to_vec(),
            Pair::Ec(pair) => pair
                .sign(&self.rng, token.as_bytes())
                // ring fails only when the system RNG fails, which the
                // process cannot survive meaningfully anyway.
                .expect("the system random number generator failed")
                .as_ref()
                .to_vec(),
        };
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        token
    }
}

/// Load the key at `path`: a PKCS#8 PEM or a private JWK.
pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| io_error(path, source))?;
    let unusable = || KeyError::Unusable(path.display().to_string());
    if text.trim_start().starts_with('{') {
        let jwk: Value = serde_json::from_str(&text).map_err(|_| unusable())?;
        return SigningKey::from_jwk(&jwk).ok_or_else(unusable);
    }
    let der = pem_body(&text).ok_or_else(unusable)?;
    SigningKey::from_pkcs8(&der).ok_or_else(unusable)
}

/// Load the key at `path`, or generate one there if there is no file yet.
pub fn load_or_generate(path: &Path, algorithm: KeyAlgorithm) -> Result<SigningKey, KeyError> {
    if path.exists() {
        return load(path);
    }
    let (key, der) = SigningKey::generate(algorithm)?;
    write_private(path, &der)?;
    tracing::info!(path = %path.display(), kid = key.kid(), "generated a new signing key");
    Ok(key)
}

/// Write a PKCS#8 key as PEM, readable by the owner only, atomically (a
/// temporary file renamed into place).
pub fn write_private(path: &Path, der: &[u8]) -> Result<(), KeyError> {
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    let body = STANDARD.encode(der);
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    write_owner_only(path, pem.as_bytes())
}

/// Write `bytes` to `path` readable by the owner only, atomically.
pub fn write_owner_only(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        restrict(dir, 0o700)?;
    }
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&temporary)
        .map_err(|e| io_error(&temporary, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(&temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| io_error(path, e))
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_error(path, e))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> Result<(), KeyError> {
    Ok(())
}

pub(super) fn io_error(path: &Path, source: std::io::Error) -> KeyError {
    KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The DER inside a `PRIVATE KEY` PEM block.
fn pem_body(text: &str) -> Option<Vec<u8>> {
    let start = text.find("-----BEGIN PRIVATE KEY-----")?;
    let rest = &text[start + "-----BEGIN PRIVATE KEY-----".len()..];
    let end = rest.find("-----END PRIVATE KEY-----")?;
    let body: String = rest[..end].split_whitespace().collect();
    STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_pem_with_a_stable_kid() {
        for algorithm in [KeyAlgorithm::EdDSA, KeyAlgorithm::ES256] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("keys/signing.pem");
            let first = load_or_generate(&path, algorithm).unwrap();
            let again = load_or_generate(&path, algorithm).unwrap();
            assert_eq!(first.kid(), again.kid());
            assert_eq!(first.public_jwk()["alg"], algorithm.jws_name());
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600);
            }
        }
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its Ed25519 example key.
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519",
            "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        });
        let key = SigningKey::from_jwk(&jwk).unwrap();
        assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn refuses_files_without_a_usable_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(matches!(load(&path), Err(KeyError::Unusable(_))));
    }
}
