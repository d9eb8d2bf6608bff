//! Per-call credentials: what upstream servers get instead of the agent's
//! token, checked by real servers against the control plane's JWKS.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcp_control_plane::config::KeyAlgorithm;
use mcp_control_plane::credentials::keys::{self, SigningKey};
use mcp_example_servers::{
    self as example_servers, CREDENTIAL_REFUSED, CredentialCheck, ExampleServer,
};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::common::hostile::Redirector;
use crate::common::upstream::test_upstream;
use crate::common::{
    ANALYST_TOKEN, ControlPlane, TESTER_TOKEN, binary, catalog, denying, echo_catalog,
};

pub fn bearer(header: &Option<String>) -> String {
    header
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "))
        .expect("a bearer credential")
        .to_string()
}

async fn jwks(cp: &ControlPlane) -> Vec<Value> {
    let body = cp.get_json("/.well-known/jwks.json").await;
    body["keys"].as_array().unwrap().clone()
}

/// Verify a minted token against the published keys, as a server would.
pub async fn verify(cp: &ControlPlane, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.expect("a kid");
    let keys = jwks(cp).await;
    let jwk = keys
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the kid is published");
    let jwk: Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[audience]);
    validation.set_issuer(&["mcp-control-plane"]);
    let key = DecodingKey::from_jwk(&jwk).unwrap();
    let mut claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;
    claims["kid"] = json!(kid);
    claims
}

#[tokio::test]
async fn http_upstreams_get_a_short_lived_token_for_one_server_and_one_tool() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&echo_catalog(&upstream.url));
    cp.wait_all_ready().await;

    let mut traces = Vec::new();
    for _ in 0..2 {
        let response = cp
            .invoke(Some(TESTER_TOKEN), json!({"action": "echo", "payload": {}}))
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        traces.push(body["trace_id"].as_str().unwrap().to_string());
    }
    let seen = upstream.seen();
    let calls: Vec<_> = seen.iter().filter(|s| s.method == "tools/call").collect();
    assert_eq!(calls.len(), 2);
    let mut ids = Vec::new();
    for (call, trace) in calls.iter().zip(&traces) {
        // Over HTTP the credential travels in the header, not in `_meta`,
        // and it is never the agent's own token.
        assert!(!call.credential_in_meta);
        let token = bearer(&call.authorization);
        assert_ne!(token, TESTER_TOKEN);
        let claims = verify(&cp, &token, "testsrv").await;
        assert_eq!(claims["sub"], "tester-1");
        assert_eq!(claims["role"], "tester");
        assert_eq!(claims["scope"], "echo");
        assert_eq!(claims["trace_id"], trace.as_str());
        let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
        assert_eq!(lifetime, 60);
        ids.push(claims["jti"].as_str().unwrap().to_string());
    }
    assert_ne!(ids[0], ids[1], "every token has its own jti");

    // The control plane's own requests (handshake, listings) carry a token
    // of its own: for this server, for no agent and no tool.
    let list = seen.iter().find(|s| s.method == "tools/list").unwrap();
    let claims = verify(&cp, &bearer(&list.authorization), "testsrv").await;
    assert_eq!(claims["sub"], "mcp-control-plane");
    assert_eq!(claims["scope"], "");
}

/// Call `tool` on an MCP server at `url`, presenting `token`.
async fn call_with(
    url: &str,
    token: Option<&str>,
    tool: &str,
    arguments: Value,
) -> Result<(), i32> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    let client = ().serve(StreamableHttpClientTransport::from_config(config)).await.unwrap();
    let params = CallToolRequestParams::new(tool.to_string())
        .with_arguments(arguments.as_object().unwrap().clone());
    let result = client.call_tool(params).await;
    let _ = client.cancel().await;
    match result {
        Ok(_) => Ok(()),
        Err(rmcp::service::ServiceError::McpError(error)) => Err(error.code.0),
        Err(other) => panic!("transport failure: {other}"),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(key: &SigningKey, audience: &str, scope: &str, exp: u64) -> String {
    let claims = json!({
        "iss": "mcp-control-plane", "sub": "trader-bot", "aud": audience,
        "scope": scope, "iat": now(), "exp": exp, "jti": "t",
    });
    key.sign_jwt(claims.to_string().as_bytes())
}

#[tokio::test]
async fn example_servers_accept_only_unexpired_tokens_for_themselves_and_the_called_tool() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    // Through the control plane the stdio servers check every call's token.
    let response = cp
        .invoke(
            Some(ANALYST_TOKEN),
            json!({"action": "read_positions", "payload": {"account": "ACC-001"}}),
        )
        .await;
    assert_eq!(response.status(), 200);

    // The execution server on its own, trusting this control plane's keys.
    let check = CredentialCheck::new(
        &cp.url("/.well-known/jwks.json"),
        "mcp-control-plane",
        "execution",
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(example_servers::serve_http(
        ExampleServer::Execution,
        Duration::ZERO,
        Some(check),
        listener,
    ));
    let key = keys::load(&cp.key_file()).unwrap();
    let trade = json!({"account": "ACC-001", "symbol": "AAPL", "side": "buy", "quantity": 1});
    let later = now() + 60;
    let valid = token(&key, "execution", "execute_trade", later);
    assert_eq!(
        call_with(&url, Some(&valid), "execute_trade", trade.clone()).await,
        Ok(())
    );

    let refused = Err(CREDENTIAL_REFUSED.0);
    // Minted for another server: replaying it here fails.
    let for_marketdata = token(&key, "marketdata", "execute_trade", later);
    assert_eq!(
        call_with(&url, Some(&for_marketdata), "execute_trade", trade.clone()).await,
        refused
    );
    // Minted for another tool.
    let for_reading = token(&key, "execution", "read_positions", later);
    assert_eq!(
        call_with(&url, Some(&for_reading), "execute_trade", trade.clone()).await,
        refused
    );
    // Expired (beyond the server's few seconds of leeway).
    let expired = token(&key, "execution", "execute_trade", now() - 30);
    assert_eq!(
        call_with(&url, Some(&expired), "execute_trade", trade.clone()).await,
        refused
    );
    // Signed by a key the control plane does not publish.
    let (stranger, _) = SigningKey::generate(KeyAlgorithm::EdDSA).unwrap();
    let forged = token(&stranger, "execution", "execute_trade", later);
    assert_eq!(
        call_with(&url, Some(&forged), "execute_trade", trade.clone()).await,
        refused
    );
    // None at all.
    assert_eq!(call_with(&url, None, "execute_trade", trade).await, refused);
}

#[tokio::test]
async fn a_rotated_key_signs_new_tokens_while_the_old_one_stays_published() {
    let upstream = test_upstream(0).await;
    let servers = format!(
        "  testsrv:\n    http: {{url: \"{}\"}}\n  marketdata:\n    stdio:\n      command: $SELF\n      args: [example-server, marketdata]\n",
        upstream.url
    );
    let tools = "  echo: {server: testsrv}\n  read_positions: {server: marketdata}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["echo", "read_positions"]));
    cp.wait_all_ready().await;
    let call = |tool: &'static str| {
        let cp = &cp;
        async move {
            let arguments = if tool == "echo" {
                json!({})
            } else {
                json!({"account": "ACC-001"})
            };
            let response = cp
                .invoke(
                    Some(TESTER_TOKEN),
                    json!({"action": tool, "payload": arguments}),
                )
                .await;
            assert_eq!(response.status(), 200, "{tool}");
        }
    };
    call("echo").await;
    call("read_positions").await;
    let first = jwks(&cp).await;
    assert_eq!(first.len(), 1);
    let old_kid = first[0]["kid"].as_str().unwrap().to_string();

    let output = std::process::Command::new(binary())
        .args(["keys", "rotate", "--config"])
        .arg(&cp.config)
        .arg("--key-file")
        .arg(cp.key_file())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(!printed.contains(&old_kid), "{printed}");

    let deadline = Instant::now() + Duration::from_secs(20);
    while jwks(&cp).await.len() < 2 {
        assert!(Instant::now() < deadline, "the new key was never published");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    call("echo").await;
    // The stdio server meets an unknown kid and fetches the keys again.
    call("read_positions").await;
    let tokens: Vec<String> = upstream
        .seen()
        .iter()
        .filter(|s| s.method == "tools/call")
        .map(|s| bearer(&s.authorization))
        .collect();
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_eq!(kid(&tokens[0]), old_kid);
    let new_kid = kid(&tokens[1]);
    assert_ne!(new_kid, old_kid);
    assert!(printed.contains(&new_kid), "{printed}");
    // The token signed before the rotation still verifies.
    verify(&cp, &tokens[0], "testsrv").await;
    let published: Vec<_> = jwks(&cp).await.iter().map(|k| k["kid"].clone()).collect();
    assert!(published.contains(&json!(old_kid)) && published.contains(&json!(new_kid)));
}

#[tokio::test]
async fn static_and_none_providers_send_the_configured_secret_or_nothing() {
    let with_secret = test_upstream(0).await;
    let without = test_upstream(0).await;
    let api_key = test_upstream(0).await;
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("upstream.secret");
    let secret = "static-upstream-secret-8f3a";
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let file = secret_file.display();
    let servers = format!(
        "  keyed:\n    http: {{url: \"{}\"}}\n    credential: {{provider: static, file: \"{file}\"}}\n  \
         open:\n    http: {{url: \"{}\"}}\n    credential: {{provider: none}}\n  \
         apikey:\n    http: {{url: \"{}\"}}\n    credential: {{provider: static, file: \"{file}\", header: X-Api-Key}}\n",
        with_secret.url, without.url, api_key.url,
    );
    let tools = "  echo: {server: keyed}\n  open_echo: {server: open, upstream_name: echo}\n  \
                 key_echo: {server: apikey, upstream_name: echo}\n";
    let cp = ControlPlane::start(&catalog(
        &servers,
        tools,
        &["echo", "open_echo", "key_echo"],
    ));
    cp.wait_all_ready().await;
    for tool in ["echo", "open_echo", "key_echo"] {
        let response = cp
            .invoke(Some(TESTER_TOKEN), json!({"action": tool, "payload": {}}))
            .await;
        assert_eq!(response.status(), 200);
    }
    // An API key goes in its own header, and no Authorization is sent.
    let keyed_by_header = api_key.seen();
    assert!(keyed_by_header.iter().any(|s| s.method == "tools/call"));
    for request in keyed_by_header {
        assert_eq!(request.api_key.as_deref(), Some(secret), "{request:?}");
        assert!(request.authorization.is_none());
    }
    let keyed = with_secret.seen();
    assert!(keyed.iter().any(|s| s.method == "tools/call"));
    for request in keyed {
        assert_eq!(bearer(&request.authorization), secret, "{request:?}");
    }
    let open = without.seen();
    assert!(open.iter().any(|s| s.method == "tools/call"));
    assert!(
        open.iter()
            .all(|s| s.authorization.is_none() && !s.credential_in_meta)
    );
    // Nor in an answer, the audit store or a log line, a failed call's
    // included.
    let (status, body) = cp.call(TESTER_TOKEN, "echo", json!({"fail": "?"})).await;
    assert_eq!(status, 200, "{body}");
    let refused = cp.call(TESTER_TOKEN, "not_granted", json!({})).await;
    assert_eq!(refused.0, 403);
    let answers = format!("{body} {}", refused.1);
    for (place, text) in [
        ("an answer", answers),
        ("the store", cp.stored()),
        ("a log line", cp.stderr_text()),
    ] {
        assert!(!text.contains(secret), "the secret reached {place}");
    }
}

/// An RFC 8693 token endpoint: counts every request in `requests`, checks
/// the client and the request, and answers `exchanged-<n>` (or 400 for the
/// audience `broken`).
async fn token_endpoint(
    requests: Arc<AtomicUsize>,
    subjects: Arc<std::sync::Mutex<Vec<String>>>,
) -> String {
    use axum::http::{HeaderMap, StatusCode};
    let handler = move |headers: HeaderMap, body: String| {
        let requests = requests.clone();
        let subjects = subjects.clone();
        async move {
            let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
            let form: std::collections::HashMap<String, String> =
                url::form_urlencoded::parse(body.as_bytes())
                    .into_owned()
                    .collect();
            // client-1:client-secret-77, HTTP Basic.
            let expected = "Basic Y2xpZW50LTE6Y2xpZW50LXNlY3JldC03Nw==";
            if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected)
                || form["grant_type"] != "urn:ietf:params:oauth:grant-type:token-exchange"
                || form["subject_token_type"] != "urn:ietf:params:oauth:token-type:jwt"
            {
                return (StatusCode::UNAUTHORIZED, "{}".to_string());
            }
            if form["audience"] == "broken" {
                return (
                    StatusCode::BAD_REQUEST,
                    r#"{"error":"invalid_target"}"#.to_string(),
                );
            }
            subjects.lock().unwrap().push(form["subject_token"].clone());
            let answer = json!({
                "access_token": format!("exchanged-{}-{n}", form["scope"]),
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": 300,
            });
            (StatusCode::OK, answer.to_string())
        }
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let router = axum::Router::new().route("/token", axum::routing::post(handler));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test]
async fn token_exchange_gives_the_upstream_the_exchanged_token_cached_per_agent_and_tool() {
    let upstream = test_upstream(0).await;
    let broken = test_upstream(0).await;
    let requests = Arc::new(AtomicUsize::new(0));
    let subjects = Arc::default();
    let endpoint = token_endpoint(requests.clone(), Arc::clone(&subjects)).await;
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("client.secret");
    std::fs::write(&secret_file, "client-secret-77").unwrap();
    let exchange = |audience: &str| {
        format!(
            "{{provider: oauth-token-exchange, token_endpoint: \"{endpoint}\", client_id: client-1, \
             client_secret: {{file: \"{}\"}}, audience: {audience}}}",
            secret_file.display()
        )
    };
    let servers = format!(
        "  testsrv:\n    http: {{url: \"{}\"}}\n    credential: {}\n  \
         brokensrv:\n    http: {{url: \"{}\"}}\n    credential: {}\n",
        upstream.url,
        exchange("vault-testsrv"),
        broken.url,
        exchange("broken"),
    );
    let tools =
        "  echo: {server: testsrv}\n  broken_echo: {server: brokensrv, upstream_name: echo}\n";
    let text = catalog(&servers, tools, &["echo", "broken_echo"]);
    let cp = ControlPlane::start(&denying(&text, secrets.path()));
    cp.wait_all_ready().await;
    // A call the policy denies: nothing minted is exchanged, the server
    // never hears of it.
    let denied = json!({"action": "echo", "payload": {"deny": true}});
    let response = cp.invoke(Some(TESTER_TOKEN), denied).await;
    assert_eq!(response.status(), 403);
    assert_eq!((requests.load(Ordering::SeqCst), upstream.calls()), (0, 0));
    for _ in 0..2 {
        let response = cp
            .invoke(Some(TESTER_TOKEN), json!({"action": "echo", "payload": {}}))
            .await;
        assert_eq!(response.status(), 200);
    }
    let calls: Vec<_> = upstream
        .seen()
        .into_iter()
        .filter(|s| s.method == "tools/call")
        .map(|s| bearer(&s.authorization))
        .collect();
    assert_eq!(calls, ["exchanged-echo-1", "exchanged-echo-1"]);
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1,
        "the second call used the cache"
    );
    // The subject token is the minted one: this agent, this tool.
    let subject = subjects.lock().unwrap()[0].clone();
    let claims = verify(&cp, &subject, "testsrv").await;
    assert_eq!(
        (claims["sub"].as_str(), claims["scope"].as_str()),
        (Some("tester-1"), Some("echo"))
    );

    // A failed exchange: the call never reaches the server.
    let response = cp
        .invoke(
            Some(TESTER_TOKEN),
            json!({"action": "broken_echo", "payload": {}}),
        )
        .await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "credential_unavailable");
    assert_eq!(broken.calls(), 0);
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "credential_unavailable");
    let (logs, stored) = (cp.stderr_text(), cp.stored());
    let answer = body.to_string();
    for secret in [
        "exchanged-echo-1",
        "client-secret-77",
        &subject,
        TESTER_TOKEN,
    ] {
        assert!(!logs.contains(secret), "{secret} reached a log line");
        assert!(!stored.contains(secret), "{secret} reached the store");
        assert!(!answer.contains(secret), "{secret} reached an answer");
    }
}

#[tokio::test]
async fn a_token_endpoint_that_redirects_is_not_followed() {
    // The token endpoint answers 307 to a working one: followed, the
    // client secret and the minted subject token would go there too.
    let upstream = test_upstream(0).await;
    let requests = Arc::new(AtomicUsize::new(0));
    let endpoint = token_endpoint(requests.clone(), Arc::default()).await;
    let redirector = Redirector::start(endpoint.trim_end_matches("/token")).await;
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("client.secret");
    std::fs::write(&secret_file, "client-secret-77").unwrap();
    let servers = format!(
        "  testsrv:\n    http: {{url: \"{}\"}}\n    credential: {{provider: oauth-token-exchange, \
         token_endpoint: \"{}/token\", client_id: client-1, client_secret: {{file: \"{}\"}}, \
         audience: testsrv}}\n",
        upstream.url,
        redirector.url,
        secret_file.display()
    );
    let cp = ControlPlane::start(&catalog(&servers, "  echo: {server: testsrv}\n", &["echo"]));
    cp.wait_all_ready().await;
    let response = (cp.invoke(Some(TESTER_TOKEN), json!({"action": "echo", "payload": {}}))).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "credential_unavailable");
    assert_eq!(redirector.hits(), 1);
    assert_eq!((requests.load(Ordering::SeqCst), upstream.calls()), (0, 0));
}

#[test]
fn the_example_servers_read_credentials_where_the_control_plane_puts_them() {
    // Two crates, one contract: the environment of stdio children and the
    // `_meta` key of per-call credentials.
    use mcp_control_plane::credentials;
    assert_eq!(example_servers::JWKS_URL_ENV, credentials::JWKS_URL_ENV);
    assert_eq!(example_servers::ISSUER_ENV, credentials::ISSUER_ENV);
    assert_eq!(example_servers::CREDENTIAL_META_KEY, credentials::META_KEY);
}
