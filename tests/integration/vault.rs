//! The `vault` credential provider against a real OpenBao dev server: a
//! token of its own for each call, carrying only the server's policies, a
//! lifetime bounded by the call's, a use limit and metadata naming the
//! call; revoked when the call ends; and no call at all when Vault cannot
//! give one.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::openbao::{OpenBao, ROOT_TOKEN};
use crate::common::upstream::test_upstream;
use crate::common::{ControlPlane, TESTER_TOKEN, catalog};

/// The control plane in front of `upstream`, whose per-call credential
/// comes from `vault` with the policy `reader`.
fn vault_catalog(upstream_url: &str, vault: &OpenBao) -> String {
    let servers = format!(
        "  svc:\n    http: {{url: {upstream_url}}}\n    timeout: 5s\n    \
         credential: {{provider: vault, kind: token, policies: [reader], ttl: 60s, uses: 3}}\n"
    );
    let tools = "  chatty: {server: svc}\n  echo: {server: svc}\n";
    catalog(&servers, tools, &["chatty", "echo"])
        + &format!(
            "vault:\n  address: \"{}\"\n  auth: {{token_env: CP_VAULT_TOKEN}}\n",
            vault.address
        )
}

#[tokio::test(flavor = "multi_thread")]
async fn each_call_gets_a_vault_token_of_its_own_revoked_when_the_call_ends() {
    let vault = OpenBao::start().await;
    let policy = json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"});
    assert_eq!(vault.post("sys/policies/acl/reader", policy).await, 204);
    let upstream = test_upstream(0).await;
    let text = vault_catalog(&upstream.url, &vault);
    let cp = ControlPlane::start_with_env(&text, &[("CP_VAULT_TOKEN", ROOT_TOKEN)]);
    cp.wait_all_ready().await;

    // `chatty` stays in flight a second: long enough to look its token up.
    let call = {
        let cp_url = cp.url("/invoke");
        let http = cp.http.clone();
        tokio::spawn(async move {
            let body = json!({"action": "chatty", "payload": {}});
            let response = http
                .post(cp_url)
                .bearer_auth(TESTER_TOKEN)
                .json(&body)
                .send();
            let response = response.await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        })
    };
    let token = loop {
        let seen = upstream.seen();
        if let Some(token) = seen
            .iter()
            .rev()
            .find(|s| s.method == "tools/call")
            .and_then(|s| s.vault_token.clone())
        {
            break token;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // While the call runs: a token with the server's policy only, a
    // lifetime within the call's limit plus the margin, a use limit, and
    // metadata that names the call.
    let (status, looked_up) = vault.lookup(&token).await;
    assert_eq!(status, 200, "{looked_up}");
    let data = &looked_up["data"];
    assert_eq!(data["policies"], json!(["reader"]), "{data}");
    let ttl = data["ttl"].as_u64().unwrap();
    assert!(
        ttl > 0 && ttl <= 35,
        "5 s timeout + 30 s margin, not 60 s: {ttl}"
    );
    assert_eq!(data["num_uses"], 3, "{data}");
    // Only its own policy: not even Vault's `default` (no lookup-self).
    let (status, _) = vault.get("auth/token/lookup-self", &token).await;
    assert_eq!(status, 403);
    let meta = &data["meta"];
    assert_eq!(meta["agent"], "tester-1", "{meta}");
    assert_eq!(meta["tool"], "chatty", "{meta}");
    assert_eq!(meta["server"], "svc", "{meta}");
    let (status, answer) = call.await.unwrap();
    assert_eq!(status, 200, "{answer}");
    let trace_id = answer["trace_id"].as_str().unwrap();
    assert_eq!(meta["trace_id"], trace_id, "{meta}");

    // Once the call has ended, the token is gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = vault.lookup(&token).await;
        if status == 403 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the token outlived its call: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each call its own token; the token never in the record.
    let (status, _) = cp
        .call(TESTER_TOKEN, "echo", json!({"message": "hi"}))
        .await;
    assert_eq!(status, 200);
    let tokens: Vec<_> = (upstream.seen().iter())
        .filter(|s| s.method == "tools/call")
        .filter_map(|s| s.vault_token.clone())
        .collect();
    assert_eq!(tokens.len(), 2);
    assert_ne!(tokens[0], tokens[1]);
    let record = cp.audit_record(trace_id).await;
    assert!(!record.to_string().contains(&token), "{record}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_vault_there_is_no_call() {
    let vault = OpenBao::start().await;
    assert_eq!(
        vault
            .post(
                "sys/policies/acl/reader",
                json!({"policy": "path \"x\" {}"})
            )
            .await,
        204
    );
    let upstream = test_upstream(0).await;
    let text = vault_catalog(&upstream.url, &vault);
    let cp = ControlPlane::start_with_env(&text, &[("CP_VAULT_TOKEN", ROOT_TOKEN)]);
    cp.wait_all_ready().await;
    drop(vault);
    let (status, body) = cp
        .call(TESTER_TOKEN, "echo", json!({"message": "hi"}))
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "credential_unavailable", "{body}");
    let calls = upstream
        .seen()
        .iter()
        .filter(|s| s.method == "tools/call")
        .count();
    assert_eq!(calls, 0, "the upstream is never contacted");
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "credential_unavailable", "{record}");
    assert!(
        record["reasons"].to_string().contains("Vault unreachable"),
        "{record}"
    );
}
