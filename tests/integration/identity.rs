//! Agents with JWTs from an identity provider: a small OIDC issuer on
//! loopback (discovery document and JWKS) signs real tokens with RSA, P-256
//! and Ed25519 keys; the control plane must accept exactly the right ones.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_control_plane::config::KeyAlgorithm;
use mcp_control_plane::credentials::keys::SigningKey;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::common::{ControlPlane, TESTER_TOKEN, catalog};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const AUDIENCE: &str = "https://mcp.test/mcp";

/// The test identity provider.
struct Idp {
    issuer: String,
    /// The published keys (public JWKs); tests may add keys (rotation).
    keys: Arc<Mutex<Vec<Value>>>,
    /// How often the JWKS was fetched.
    jwks_fetches: Arc<AtomicUsize>,
    rsa: EncodingKey,
    ec: SigningKey,
    ed: SigningKey,
}

#[derive(Clone)]
struct IdpState {
    issuer: String,
    keys: Arc<Mutex<Vec<Value>>>,
    jwks_fetches: Arc<AtomicUsize>,
}

async fn discovery(State(state): State<IdpState>) -> Json<Value> {
    Json(json!({
        "issuer": state.issuer,
        "jwks_uri": format!("{}/jwks", state.issuer),
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
    }))
}

async fn jwks(State(state): State<IdpState>) -> Json<Value> {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    Json(json!({ "keys": *state.keys.lock().unwrap() }))
}

impl Idp {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let rsa_jwk: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{FIXTURES}/idp-rsa.jwk.json")).unwrap(),
        )
        .unwrap();
        let rsa_pem = std::fs::read(format!("{FIXTURES}/idp-rsa.pem")).unwrap();
        let (ec, _) = SigningKey::generate(KeyAlgorithm::ES256).unwrap();
        let (ed, _) = SigningKey::generate(KeyAlgorithm::EdDSA).unwrap();
        let keys = Arc::new(Mutex::new(vec![
            rsa_jwk,
            ec.public_jwk().clone(),
            ed.public_jwk().clone(),
        ]));
        let state = IdpState {
            issuer: issuer.clone(),
            keys: keys.clone(),
            jwks_fetches: Arc::default(),
        };
        let jwks_fetches = state.jwks_fetches.clone();
        let router = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(discovery),
            )
            .route("/jwks", axum::routing::get(jwks))
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            issuer,
            keys,
            jwks_fetches,
            rsa: EncodingKey::from_rsa_pem(&rsa_pem).unwrap(),
            ec,
            ed,
        }
    }

    /// Claims of a valid token for `sub` with `groups`; tests alter them.
    fn claims(&self, sub: &str, groups: &[&str]) -> Value {
        let now = now();
        json!({
            "iss": self.issuer, "sub": sub, "aud": AUDIENCE,
            "iat": now, "exp": now + 300, "groups": groups,
        })
    }

    fn rs256(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("idp-rsa-1".into());
        jsonwebtoken::encode(&header, claims, &self.rsa).unwrap()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A catalog whose `tester` role is granted to members of `desk-analysts`
/// (and `nobody` to `interns`), trusting `idp` through discovery.
fn idp_catalog(idp: &Idp, extra_issuer: &str) -> String {
    format!(
        "{}identity:\n  resource: {AUDIENCE}\n  issuers:\n    corp:\n      issuer: \"{}\"\n      \
         clock_skew: 5s\n      scopes: [mcp.tools]\n      role:\n        claim: groups\n        \
         map: {{desk-analysts: tester, interns: nobody}}\n{extra_issuer}",
        catalog("", "", &[]),
        idp.issuer
    )
}

/// The status and body of `GET /tools`, with the request's `trace_id`.
async fn tools_status(cp: &ControlPlane, token: &str) -> (u16, Value) {
    let response = cp.get_tools(token, "").await;
    let status = response.status().as_u16();
    let traceparent = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_string();
    let mut body: Value = response.json().await.unwrap();
    body["trace_id"] = json!(traceparent.split('-').nth(1).unwrap());
    (status, body)
}

#[tokio::test]
async fn tokens_signed_by_the_issuer_for_this_audience_are_accepted_with_their_mapped_role() {
    let idp = Idp::start().await;
    let cp = ControlPlane::start(&idp_catalog(&idp, ""));
    let claims = idp.claims("alice@corp", &["staff", "desk-analysts"]);
    let tokens = [
        idp.rs256(&claims),
        idp.ec.sign_jwt(claims.to_string().as_bytes()),
        idp.ed.sign_jwt(claims.to_string().as_bytes()),
    ];
    for token in &tokens {
        let (status, body) = tools_status(&cp, token).await;
        assert_eq!(status, 200, "{body}");
        let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
        assert_eq!(record["agent_id"], "alice@corp");
        assert_eq!(record["role"], "tester");
    }
    // Service tokens keep working beside JWTs.
    assert_eq!(tools_status(&cp, TESTER_TOKEN).await.0, 200);
    // The MCP endpoint takes the same tokens.
    let response = cp
        .http
        .post(cp.url("/mcp"))
        .bearer_auth(&tokens[0])
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let logs = cp.stderr_text();
    for token in &tokens {
        assert!(!logs.contains(token.as_str()), "a JWT reached a log line");
    }
}

#[tokio::test]
async fn forged_misdirected_expired_and_unmapped_tokens_are_refused() {
    let idp = Idp::start().await;
    let cp = ControlPlane::start(&idp_catalog(&idp, ""));
    let good = idp.claims("mallory", &["desk-analysts"]);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = good.clone();
        change(&mut claims);
        claims
    };
    let (stranger, _) = SigningKey::generate(KeyAlgorithm::EdDSA).unwrap();
    let public_pem = std::fs::read(format!("{FIXTURES}/idp-rsa.pub.pem")).unwrap();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("idp-rsa-1".into());
    let none_token = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT","kid":"idp-rsa-1"}"#),
        b64(good.to_string().as_bytes())
    );
    // A valid Ed25519 signature by a key the issuer never published, under
    // the kid of one it did.
    let ed_kid = idp.ed.kid().to_string();
    let forged = {
        let mut token = stranger.sign_jwt(good.to_string().as_bytes());
        let header = b64(json!({"alg": "EdDSA", "typ": "JWT", "kid": ed_kid})
            .to_string()
            .as_bytes());
        let rest = token.split_once('.').unwrap().1.to_string();
        token = format!("{header}.{rest}");
        token
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong issuer",
            idp.rs256(&with(&|c| c["iss"] = json!("https://evil.test"))),
            "invalid",
        ),
        (
            "wrong audience",
            idp.rs256(&with(&|c| c["aud"] = json!("https://other.service/mcp"))),
            "invalid",
        ),
        (
            "expired",
            idp.rs256(&with(&|c| c["exp"] = json!(now() - 60))),
            "expired",
        ),
        (
            "not yet valid",
            idp.rs256(&with(&|c| c["nbf"] = json!(now() + 600))),
            "invalid",
        ),
        ("forged signature", forged, "invalid"),
        ("alg none", none_token, "invalid"),
        (
            "HS256 with the public key as secret",
            jsonwebtoken::encode(&hs_header, &good, &EncodingKey::from_secret(&public_pem))
                .unwrap(),
            "invalid",
        ),
        (
            "unknown kid",
            stranger.sign_jwt(good.to_string().as_bytes()),
            "invalid",
        ),
        (
            "no mapped group",
            idp.rs256(&with(&|c| c["groups"] = json!(["staff"]))),
            "invalid",
        ),
        (
            "groups naming two roles",
            idp.rs256(&with(&|c| {
                c["groups"] = json!(["desk-analysts", "interns"])
            })),
            "invalid",
        ),
        (
            "no subject",
            idp.rs256(&with(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            })),
            "invalid",
        ),
    ];
    for (case, token, reason) in &cases {
        let (status, body) = tools_status(&cp, token).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(reason),
            "{case}: {body}"
        );
        let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
        assert_eq!(record["outcome"], "unauthenticated", "{case}");
    }
    // The positive control: the same claims, properly signed.
    assert_eq!(tools_status(&cp, &idp.rs256(&good)).await.0, 200);
    let logs = cp.stderr_text();
    for (case, token, _) in &cases {
        assert!(
            !logs.contains(token.as_str()),
            "{case}: the token reached a log line"
        );
    }
}

#[tokio::test]
async fn new_issuer_keys_are_fetched_at_once_and_unknown_kids_cannot_flood_the_issuer() {
    let idp = Idp::start().await;
    let cp = ControlPlane::start(&idp_catalog(&idp, ""));
    let claims = idp.claims("bob", &["desk-analysts"]);
    assert_eq!(tools_status(&cp, &idp.rs256(&claims)).await.0, 200);
    let fetches = idp.jwks_fetches.load(Ordering::SeqCst);
    assert_eq!(fetches, 1);

    // The issuer rotates in a new key: its first token is accepted.
    let (rotated, _) = SigningKey::generate(KeyAlgorithm::ES256).unwrap();
    idp.keys.lock().unwrap().push(rotated.public_jwk().clone());
    let token = rotated.sign_jwt(claims.to_string().as_bytes());
    assert_eq!(tools_status(&cp, &token).await.0, 200);
    assert_eq!(idp.jwks_fetches.load(Ordering::SeqCst), 2);

    // Tokens with made-up kids: one refetch, then no more for a while.
    for _ in 0..5 {
        let (stranger, _) = SigningKey::generate(KeyAlgorithm::EdDSA).unwrap();
        let token = stranger.sign_jwt(claims.to_string().as_bytes());
        assert_eq!(tools_status(&cp, &token).await.0, 401);
    }
    assert_eq!(idp.jwks_fetches.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_unreachable_key_set_fails_closed() {
    let idp = Idp::start().await;
    // A second issuer whose keys live on a port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/jwks", closed.local_addr().unwrap());
    drop(closed);
    let extra = format!(
        "    partner:\n      issuer: https://partner.test\n      jwks_url: \"{dead}\"\n      \
         role: {{claim: mcp_role}}\n"
    );
    let cp = ControlPlane::start(&idp_catalog(&idp, &extra));
    let mut claims = idp.claims("carol", &[]);
    claims["iss"] = json!("https://partner.test");
    claims["mcp_role"] = json!("tester");
    let (status, body) = tools_status(&cp, &idp.rs256(&claims)).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn the_resource_metadata_names_the_issuers_and_every_401_points_to_it() {
    let idp = Idp::start().await;
    let cp = ControlPlane::start(&idp_catalog(&idp, ""));
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let metadata = cp.get_json(path).await;
        assert_eq!(metadata["resource"], AUDIENCE);
        assert_eq!(metadata["authorization_servers"], json!([idp.issuer]));
        assert_eq!(metadata["scopes_supported"], json!(["mcp.tools"]));
        assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
    }
    let response = cp.http.post(cp.url("/mcp")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp""#
    );
}
