//! Multi round-trip requests (SEP-2322) through the control plane, from
//! clients of both eras, to an upstream on the 2026-07-28 revision that asks
//! for input by answering `input_required`.

use rmcp::model::{ClientRequest, ErrorCode, Request, ServerResult};
use serde_json::json;
use tokio::sync::mpsc;

use super::{Client, call, connect_stateless, mcp_error, transport};
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
