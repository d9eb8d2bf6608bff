//! Multi round-trip requests (SEP-2322) through the control plane, from
//! clients of both eras, to an upstream on the 2026-07-28 revision that asks
//! for input by answering `input_required`.

use rmcp::model::{ClientRequest, ErrorCode, Request, ServerResult};
use serde_json::json;
use tokio::sync::mpsc;

use super::{Client, Session, call, connect_stateless, mcp_error, transport};
use crate::common::upstream::conformance_upstream;
use crate::common::{ControlPlane, TESTER_TOKEN, catalog};
use rmcp::ServiceExt;

/// The conformance fixture's sampling question, on a 2026-07-28 session.
async fn asking_upstream() -> ControlPlane {
    let fixture = conformance_upstream().await;
    let servers =
        format!("  asks:\n    http: {{url: \"{fixture}\"}}\n    protocol: \"2026-07-28\"\n");
    let tools = "  capital: {server: asks, upstream_name: test_input_required_result_sampling}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["capital"]));
    cp.wait_all_ready().await;
    cp
}

#[tokio::test(flavor = "multi_thread")]
async fn an_initialize_era_client_is_asked_on_its_session_and_the_control_plane_retries() {
    let cp = asking_upstream().await;
    let (progress, _) = mpsc::unbounded_channel();
    let sampler = Client {
        progress,
        changed: None,
        answers: Some("the agent"),
    }
    .serve(transport(&cp, TESTER_TOKEN))
    .await
    .unwrap();
    let answer = sampler.call_tool(call("capital", json!({}))).await.unwrap();
    let text = &answer.content[0].as_text().unwrap().text;
    assert_eq!(text, "The model answered: 42, sampled by the agent");
    // Two rounds, each a request of its own through the pipeline.
    let calls = cp
        .audit_matching(2, |r| r["tool"] == "capital" && r["outcome"] == "ok")
        .await;
    assert_eq!(calls.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2026_07_28_client_gets_input_required_with_a_sealed_state_and_a_forged_one_is_refused() {
    let cp = asking_upstream().await;
    let session = connect_stateless(&cp, TESTER_TOKEN).await;
    let ask = |request_state: Option<&str>| {
        let mut params = call("capital", json!({}));
        if let Some(state) = request_state {
            let answer = json!({"role": "assistant", "model": "m",
                "content": {"type": "text", "text": "Paris"}});
            params.input_responses = Some([("capital_question".to_string(), answer)].into());
            params.request_state = Some(state.to_string());
        }
        let request = ClientRequest::CallToolRequest(Request::new(params));
        session.peer().send_request(request)
    };
    let Ok(ServerResult::InputRequiredResult(asked)) = ask(None).await else {
        panic!("not input_required");
    };
    assert!(
        asked
            .input_requests
            .unwrap()
            .contains_key("capital_question")
    );
    // The fixture issues no state for this tool; a state the control plane
    // did not seal is refused before the upstream, whatever it holds.
    assert!(asked.request_state.is_none());
    let forged = mcp_error(ask(Some("mcpcp1.AAAAAAAAAAAAAAAAAAAAAA.x")).await);
    assert_eq!(forged.code, ErrorCode::INVALID_PARAMS);
    let record = cp
        .audit_matching(1, |r| r["outcome"] == "bad_request")
        .await;
    // Never contacted: the forged round's leg never left (no `started`, no
    // span), and of every round of the tool only the first one's did.
    let left = |record: &serde_json::Value| -> usize {
        let legs: Vec<serde_json::Value> =
            serde_json::from_str(record["legs"].as_str().expect("legs")).unwrap();
        assert!(!legs.is_empty(), "{record}");
        legs.iter().filter(|leg| !leg["started"].is_null()).count()
    };
    assert_eq!(left(&record[0]), 0, "{}", record[0]);
    let rounds = cp.audit_matching(2, |r| r["tool"] == "capital").await;
    assert_eq!(rounds.len(), 2, "{rounds:?}");
    assert_eq!(rounds.iter().map(left).sum::<usize>(), 1, "{rounds:?}");
}

/// The test upstream pinned to the initialize era: its `ask` asks the
/// client during the call, on the call's stream.
async fn initialize_era_asker() -> (crate::common::upstream::HttpUpstream, ControlPlane) {
    let upstream = crate::common::upstream::test_upstream(0).await;
    let servers = format!(
        "  old:\n    http: {{url: {}}}\n    protocol: \"2025-11-25\"\n    timeout: 5s\n",
        upstream.url
    );
    let tools = "  ask: {server: old}\n  other: {server: old, upstream_name: echo}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["ask", "other"]));
    cp.wait_all_ready().await;
    (upstream, cp)
}

/// The first round of `ask`, asking for sampling, sent by hand.
async fn sample(on: &Session) -> Result<ServerResult, rmcp::service::ServiceError> {
    let request = call("ask", json!({ "message": "sample" }));
    on.peer()
        .send_request(ClientRequest::CallToolRequest(Request::new(request)))
        .await
}

/// A 2026-07-28 client that answers sampling and elicitation itself.
async fn modern_answering(
    cp: &ControlPlane,
) -> rmcp::service::RunningService<rmcp::RoleClient, Client> {
    let (progress, _) = mpsc::unbounded_channel();
    let lifecycle = rmcp::ClientLifecycleMode::Discover {
        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
    };
    let client = Client {
        progress,
        changed: None,
        answers: Some("the modern agent"),
    };
    use rmcp::ClientServiceExt;
    (client.serve_with_lifecycle(transport(cp, TESTER_TOKEN), lifecycle))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_initialize_era_servers_request_reaches_a_2026_07_28_client_as_input_required() {
    let (_upstream, cp) = initialize_era_asker().await;
    let session = modern_answering(&cp).await;
    // The client's own rmcp drives the rounds: it takes `input_required`,
    // answers with its handler, and retries; the server's request, waiting
    // all along, gets that answer.
    for (message, expected) in [
        ("sample", "sampled by the modern agent"),
        ("elicit", "\"by\":\"the modern agent\""),
    ] {
        let answer = session
            .call_tool(call("ask", json!({ "message": message })))
            .await
            .unwrap();
        let text = &answer.content[0].as_text().unwrap().text;
        assert!(text.starts_with("client answered: "), "{text}");
        assert!(text.contains(expected), "{message}: {text}");
    }
    // Each round is a request of its own through the pipeline.
    let rounds = cp
        .audit_matching(4, |r| r["tool"] == "ask" && r["outcome"] == "ok")
        .await;
    assert_eq!(rounds.len(), 4);

    // By hand: the first round is `input_required` under a sealed state;
    // that state is good once, for that tool only.
    let raw = connect_stateless(&cp, TESTER_TOKEN).await;
    let first = sample(&raw).await;
    // This client declared no sampling: the server is refused at once.
    let Ok(ServerResult::CallToolResult(refused)) = first else {
        panic!("{first:?}");
    };
    assert_eq!(
        refused.content[0].as_text().unwrap().text,
        format!("client refused: {}", ErrorCode::METHOD_NOT_FOUND.0)
    );
    let retry = |tool: &str, state: &str| {
        let mut params = call(tool, json!({ "message": "sample" }));
        let answer = json!({"role": "assistant", "model": "m",
            "content": {"type": "text", "text": "42"}});
        params.input_responses = Some([("upstream".to_string(), answer)].into());
        params.request_state = Some(state.to_string());
        session
            .peer()
            .send_request(ClientRequest::CallToolRequest(Request::new(params)))
    };
    let asked = sample(&session).await;
    let Ok(ServerResult::InputRequiredResult(asked)) = asked else {
        panic!("{asked:?}");
    };
    assert!(asked.input_requests.unwrap().contains_key("upstream"));
    let state = asked
        .request_state
        .expect("a state naming the waiting call");
    assert!(
        state.starts_with("mcpcp1."),
        "sealed on its way out: {state}"
    );
    let elsewhere = mcp_error(retry("other", &state).await);
    assert_eq!(elsewhere.code, ErrorCode::INVALID_PARAMS);
    let Ok(ServerResult::CallToolResult(done)) = retry("ask", &state).await else {
        panic!("the retry completes the call");
    };
    assert!(done.content[0].as_text().unwrap().text.contains("42"));
    let again = mcp_error(retry("ask", &state).await);
    assert_eq!(
        again.code,
        ErrorCode::INVALID_PARAMS,
        "a state is good once"
    );
    // A call parked longer than its server's timeout (5 s here) is gone:
    // its request refused, the call cancelled upstream, the retry refused.
    let Ok(ServerResult::InputRequiredResult(asked)) = sample(&session).await else {
        panic!("input_required");
    };
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let late = mcp_error(retry("ask", &asked.request_state.unwrap()).await);
    assert_eq!(late.code, ErrorCode::INVALID_PARAMS, "parked too long");
}

/// A parked call keeps the Vault token its first round obtained until the
/// call ends: the server may use it while the client answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_parked_call_keeps_its_vault_token_until_it_ends() {
    use crate::common::openbao::{OpenBao, ROOT_TOKEN};
    let vault = OpenBao::start().await;
    let policy = json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"});
    assert_eq!(vault.post("sys/policies/acl/reader", policy).await, 204);
    let upstream = crate::common::upstream::test_upstream(0).await;
    let servers = format!(
        "  old:\n    http: {{url: {}}}\n    protocol: \"2025-11-25\"\n    timeout: 5s\n    \
         credential: {{provider: vault, kind: token, policies: [reader]}}\n",
        upstream.url
    );
    let text = catalog(&servers, "  ask: {server: old}\n", &["ask"])
        + &format!(
            "vault:\n  address: \"{}\"\n  auth: {{token_env: CP_VAULT_TOKEN}}\n",
            vault.address
        );
    let cp = ControlPlane::start_with_env(&text, &[("CP_VAULT_TOKEN", ROOT_TOKEN)]);
    cp.wait_all_ready().await;
    let session = modern_answering(&cp).await;
    let Ok(ServerResult::InputRequiredResult(asked)) = sample(&session).await else {
        panic!("input_required");
    };
    let calls = upstream.seen();
    let call = calls
        .iter()
        .rev()
        .find(|s| s.method == "tools/call")
        .unwrap();
    let token = call.vault_token.clone().expect("a Vault token");
    // The first round has ended; its token lives on with the parked call.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(vault.lookup(&token).await.0, 200, "revoked while parked");
    let mut params = call_params_with_answer(asked.request_state.unwrap());
    params.arguments = Some(json!({ "message": "sample" }).as_object().unwrap().clone());
    let done = session
        .peer()
        .send_request(ClientRequest::CallToolRequest(Request::new(params)))
        .await;
    assert!(
        matches!(done, Ok(ServerResult::CallToolResult(_))),
        "{done:?}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while vault.lookup(&token).await.0 != 403 {
        assert!(
            std::time::Instant::now() < deadline,
            "the token outlived its call"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A retry of `ask` answering its sampling request, under `state`.
fn call_params_with_answer(state: String) -> rmcp::model::CallToolRequestParams {
    let mut params = call("ask", json!({}));
    let answer = json!({"role": "assistant", "model": "m",
        "content": {"type": "text", "text": "42"}});
    params.input_responses = Some([("upstream".to_string(), answer)].into());
    params.request_state = Some(state);
    params
}
