//! Agents with JWTs from an identity provider: a small OIDC issuer on
//! loopback (discovery document and JWKS) signs real tokens with RSA, P-256
//! and Ed25519 keys; the control plane must accept exactly the right ones.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_control_plane::config::KeyAlgorithm;
use mcp_control_plane::credentials::keys::SigningKey;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::common::hostile::Redirector;
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
    let (logs, stored) = (cp.stderr_text(), cp.stored());
    for token in &tokens {
        assert!(!logs.contains(token.as_str()), "a JWT reached a log line");
        assert!(!stored.contains(token.as_str()), "a JWT reached the store");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jwt_agents_own_token_never_reaches_an_upstream() {
    let idp = Idp::start().await;
    let upstream = crate::common::upstream::test_upstream(0).await;
    let servers = format!("  testsrv:\n    http: {{url: \"{}\"}}\n", upstream.url);
    let text = idp_catalog(&idp, "").replacen(
        &catalog("", "", &[]),
        &catalog(&servers, "  echo: {server: testsrv}\n", &["echo"]),
        1,
    );
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;
    let token = idp.rs256(&idp.claims("alice@corp", &["desk-analysts"]));
    let (status, body) = cp.call(&token, "echo", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let calls: Vec<_> = (upstream.seen().into_iter())
        .filter(|seen| seen.method == "tools/call")
        .collect();
    assert_eq!(calls.len(), 1);
    // The server got a token minted for it, naming the person's identity.
    let sent = calls[0].authorization.clone().expect("a credential");
    let minted = sent.strip_prefix("Bearer ").unwrap();
    assert_ne!(minted, token);
    let claims = crate::credentials::verify(&cp, minted, "testsrv").await;
    assert_eq!(claims["sub"], "alice@corp");
    for seen in upstream.seen() {
        let headers = [&seen.authorization, &seen.api_key, &seen.tracestate_header];
        assert!(
            headers
                .iter()
                .all(|h| !h.as_deref().unwrap_or("").contains(&token)),
            "{seen:?}"
        );
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
    // Each case, and the reason its record gives (the agent is told only
    // "invalid bearer credential", or that its token expired).
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong issuer",
            idp.rs256(&with(&|c| c["iss"] = json!("https://evil.test"))),
            "the token's issuer is not configured",
        ),
        (
            "wrong audience",
            idp.rs256(&with(&|c| c["aud"] = json!("https://other.service/mcp"))),
            "the token is for another audience",
        ),
        (
            "expired",
            idp.rs256(&with(&|c| c["exp"] = json!(now() - 60))),
            "",
        ),
        (
            "not yet valid",
            idp.rs256(&with(&|c| c["nbf"] = json!(now() + 600))),
            "the token is not valid yet",
        ),
        ("forged signature", forged, "the signature does not verify"),
        ("alg none", none_token, "not a well-formed JWT"),
        (
            "HS256 with the public key as secret",
            jsonwebtoken::encode(&hs_header, &good, &EncodingKey::from_secret(&public_pem))
                .unwrap(),
            "the signing algorithm is not accepted",
        ),
        (
            "unknown kid",
            stranger.sign_jwt(good.to_string().as_bytes()),
            "the issuer publishes no key with this kid",
        ),
        (
            "no mapped group",
            idp.rs256(&with(&|c| c["groups"] = json!(["staff"]))),
            "no role claim value names a role",
        ),
        (
            "groups naming two roles",
            idp.rs256(&with(&|c| {
                c["groups"] = json!(["desk-analysts", "interns"])
            })),
            "the role claim names more than one role",
        ),
        (
            "no subject",
            idp.rs256(&with(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            })),
            "the token has no agent claim",
        ),
    ];
    for (case, token, reason) in &cases {
        let (status, body) = tools_status(&cp, token).await;
        assert_eq!(status, 401, "{case}: {body}");
        let told = match *reason {
            "" => "authentication required: the bearer credential has expired",
            _ => "authentication required: invalid bearer credential",
        };
        assert_eq!(body["error"]["message"], told, "{case}: {body}");
        let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
        assert_eq!(record["outcome"], "unauthenticated", "{case}");
        assert_eq!(record["reasons"], *reason, "{case}");
    }
    // The operator's log has the detail of the verification failure.
    cp.wait_log("InvalidAudience").await;
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

/// `idp`'s key set on a port of its own that closes every connection at
/// once until `open` is set: an issuer whose keys cannot be reached.
async fn gated_jwks(idp: &Idp, open: Arc<AtomicBool>) -> String {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let state = IdpState {
        issuer: idp.issuer.clone(),
        keys: idp.keys.clone(),
        jwks_fetches: Arc::default(),
    };
    let router = axum::Router::new()
        .route("/jwks", axum::routing::get(jwks))
        .with_state(state);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            if !open.load(Ordering::SeqCst) {
                continue;
            }
            let service = TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn an_unreachable_key_set_fails_closed() {
    let idp = Idp::start().await;
    // A second issuer whose keys cannot be reached, until they can.
    let open = Arc::new(AtomicBool::new(false));
    let gated = gated_jwks(&idp, open.clone()).await;
    let extra = format!(
        "    partner:\n      issuer: https://partner.test\n      jwks_url: \"{gated}\"\n      \
         role: {{claim: mcp_role}}\n"
    );
    let cp = ControlPlane::start(&idp_catalog(&idp, &extra));
    let mut claims = idp.claims("carol", &[]);
    claims["iss"] = json!("https://partner.test");
    claims["mcp_role"] = json!("tester");
    let token = idp.rs256(&claims);
    let (status, body) = tools_status(&cp, &token).await;
    assert_eq!(status, 401, "{body}");
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["reasons"], "the issuer's key set is unavailable");
    cp.wait_log("cannot fetch the key set; refusing tokens that need it")
        .await;

    // The same token, once the keys can be fetched.
    open.store(true, Ordering::SeqCst);
    let (status, body) = tools_status(&cp, &token).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_key_set_that_redirects_is_not_followed() {
    // The key set's URL answers 307 to the issuer's real one: followed, a
    // token would verify with keys from wherever the redirect points.
    let idp = Idp::start().await;
    let redirector = Redirector::start(&idp.issuer).await;
    let extra = format!(
        "    partner:\n      issuer: https://partner.test\n      jwks_url: \"{}/jwks\"\n      \
         role: {{claim: mcp_role}}\n",
        redirector.url
    );
    let cp = ControlPlane::start(&idp_catalog(&idp, &extra));
    let mut claims = idp.claims("carol", &[]);
    claims["iss"] = json!("https://partner.test");
    claims["mcp_role"] = json!("tester");
    let (status, body) = tools_status(&cp, &idp.rs256(&claims)).await;
    assert_eq!(status, 401, "{body}");
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["reasons"], "the issuer's key set is unavailable");
    assert!(redirector.hits() >= 1);
    assert_eq!(idp.jwks_fetches.load(Ordering::SeqCst), 0);
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
