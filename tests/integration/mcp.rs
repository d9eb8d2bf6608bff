//! The MCP front door (`/mcp`) driven by rmcp's own client, through the
//! control plane, to real upstream servers over stdio and Streamable HTTP.

// The tests drive sampling (deprecated from the 2026-07-28 revision on).
#![allow(deprecated)]

use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ClientRequest, ErrorCode,
    Implementation, ProgressNotificationParam, ProtocolVersion, Request, ServerResult,
};
use rmcp::service::{
    NotificationContext, PeerRequestOptions, RoleClient, RunningService, ServiceError,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::common::upstream::test_upstream;
use crate::common::{ANALYST_TOKEN, ControlPlane, TESTER_TOKEN, TRADER_TOKEN, catalog};

/// A client that reports the progress and list-changed notifications it
/// receives and answers sampling requests when `samples` is set.
#[derive(Clone)]
struct Client {
    progress: mpsc::UnboundedSender<ProgressNotificationParam>,
    changed: Option<mpsc::UnboundedSender<String>>,
    samples: bool,
}

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        // The newest initialize-based revision: sessions, server notifications.
        let capabilities = if self.samples {
            ClientCapabilities::builder().enable_sampling().build()
        } else {
            ClientCapabilities::default()
        };
        ClientConfig::new(capabilities, Implementation::new("test-agent", "1.0"))
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        let _ = self.progress.send(params);
    }

    #[allow(deprecated)]
    async fn create_message(
        &self,
        params: rmcp::model::CreateMessageRequestParams,
        _: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<rmcp::model::CreateMessageResult, rmcp::ErrorData> {
        assert_eq!(params.messages.len(), 1);
        Ok(rmcp::model::CreateMessageResult::new(
            rmcp::model::SamplingMessage::assistant_text("42, sampled by the agent"),
            "test-model".into(),
        ))
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        if let Some(changed) = &self.changed {
            let _ = changed.send("tools".into());
        }
    }

    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        if let Some(changed) = &self.changed {
            let _ = changed.send(format!("updated {}", params.uri));
        }
    }
}

type Session = RunningService<RoleClient, Client>;

fn transport(cp: &ControlPlane, token: &str) -> StreamableHttpClientTransport<reqwest::Client> {
    let config = StreamableHttpClientTransportConfig::with_uri(cp.url("/mcp")).auth_header(token);
    StreamableHttpClientTransport::from_config(config)
}

/// Connect with the initialize handshake (revisions up to 2025-11-25).
async fn connect(
    cp: &ControlPlane,
    token: &str,
) -> (Session, mpsc::UnboundedReceiver<ProgressNotificationParam>) {
    let (progress, rx) = mpsc::unbounded_channel();
    let session = Client {
        progress,
        changed: None,
        samples: false,
    }
    .serve(transport(cp, token))
    .await
    .expect("initialize");
    (session, rx)
}

/// Connect with the stateless 2026-07-28 revision (`server/discover`).
async fn connect_stateless(cp: &ControlPlane, token: &str) -> Session {
    let (progress, _rx) = mpsc::unbounded_channel();
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    Client {
        progress,
        changed: None,
        samples: false,
    }
    .serve_with_lifecycle(transport(cp, token), lifecycle)
    .await
    .expect("server/discover")
}

async fn tool_names(session: &Session) -> Vec<String> {
    let mut names: Vec<_> = session
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

fn call(tool: &str, arguments: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(tool.to_string())
        .with_arguments(arguments.as_object().unwrap().clone())
}

fn mcp_error(result: Result<impl std::fmt::Debug, ServiceError>) -> rmcp::ErrorData {
    match result {
        Err(ServiceError::McpError(error)) => error,
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_role_lists_and_calls_its_tools_over_both_lifecycles() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let (analyst, _) = connect(&cp, ANALYST_TOKEN).await;
    let info = analyst.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "mcp-control-plane");
    assert_eq!(tool_names(&analyst).await, ["read_positions", "run_report"]);
    let tools = analyst.list_all_tools().await.unwrap();
    let text = serde_json::to_string(&tools).unwrap();
    for needle in [
        "marketdata",
        "research",
        "execution",
        "http://",
        "$SELF",
        "example-server",
    ] {
        assert!(
            !text.contains(needle),
            "tools/list reveals {needle}: {text}"
        );
    }
    let result = analyst
        .call_tool(call(
            "read_positions",
            json!({ "account": "ACC-002", "symbol": "XOM" }),
        ))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false));
    assert_eq!(
        result.structured_content.unwrap()["positions"][0]["quantity"],
        1000
    );

    let trader = connect_stateless(&cp, TRADER_TOKEN).await;
    assert_eq!(
        tool_names(&trader).await,
        ["execute_trade", "read_positions"]
    );
    let result = trader
        .call_tool(call(
            "execute_trade",
            json!({ "account": "ACC-001", "symbol": "MSFT", "side": "sell", "quantity": 5, "limit_price": 420.5 }),
        ))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["order_type"], "limit");

    let calls: Vec<Value> = cp
        .audit_records()
        .into_iter()
        .filter(|r| r["front_door"] == "mcp" && r["action"] == "call")
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0]["agent_id"], "agent-42");
    assert_eq!(calls[0]["server"], "marketdata");
    assert_eq!(calls[1]["agent_id"], "agent-7");
    assert_eq!(calls[1]["outcome"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn forbidden_and_unknown_tools_get_the_same_error_and_tool_errors_are_results() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let (analyst, _) = connect(&cp, ANALYST_TOKEN).await;
    let forbidden = mcp_error(analyst.call_tool(call("execute_trade", json!({}))).await);
    let unknown = mcp_error(analyst.call_tool(call("launch_missiles", json!({}))).await);
    assert_eq!(forbidden.code, ErrorCode::INVALID_PARAMS);
    assert_eq!(forbidden.code, unknown.code);
    assert_eq!(forbidden.message, unknown.message);
    assert_eq!(forbidden.data.as_ref().unwrap()["code"], "forbidden");
    assert_eq!(unknown.data.as_ref().unwrap()["code"], "forbidden");
    let trace_id = forbidden.data.as_ref().unwrap()["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(cp.audit_record(&trace_id).await["outcome"], "denied_role");

    let (trader, _) = connect(&cp, TRADER_TOKEN).await;
    let result = trader
        .call_tool(call(
            "execute_trade",
            json!({ "account": "A", "symbol": "X", "side": "buy", "quantity": 0 }),
        ))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
}

/// A catalog routing the test upstream's tools, with a short timeout.
async fn test_catalog() -> (crate::common::upstream::HttpUpstream, ControlPlane) {
    let upstream = test_upstream(0).await;
    let servers = format!(
        "  svc:\n    http: {{url: {}}}\n    timeout: 2s\n",
        upstream.url
    );
    let tools = "  echo: {server: svc}\n  hang: {server: svc}\n  progress: {server: svc}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["echo", "hang", "progress"]));
    cp.wait_all_ready().await;
    (upstream, cp)
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_reaches_the_client_under_its_own_token() {
    let (_upstream, cp) = test_catalog().await;
    let (session, mut progress) = connect(&cp, TESTER_TOKEN).await;
    // The client stamps its own progress token on the request.
    let handle = session
        .peer()
        .send_request_with_option(
            ClientRequest::CallToolRequest(Request::new(call("progress", json!({})))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let response = handle.await_response().await.unwrap();
    let ServerResult::CallToolResult(result) = response else {
        panic!("unexpected {response:?}");
    };
    assert_eq!(
        result.content[0].as_text().unwrap().text,
        "progress token seen: true"
    );
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let p = tokio::time::timeout(Duration::from_secs(5), progress.recv())
            .await
            .expect("progress notification")
            .unwrap();
        seen.push(p);
    }
    assert!(seen.iter().all(|p| p.progress_token == token), "{seen:?}");
    // rmcp hands each notification to its own task, so the order may vary.
    seen.sort_by(|a, b| a.progress.total_cmp(&b.progress));
    assert_eq!(
        seen.iter().map(|p| p.progress).collect::<Vec<_>>(),
        [1.0, 2.0]
    );
    assert_eq!(seen[1].message.as_deref(), Some("step 2"));
    assert_eq!(seen[1].total, Some(2.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_cancellation_cancels_the_upstream_call() {
    let (upstream, cp) = test_catalog().await;
    let (session, _) = connect(&cp, TESTER_TOKEN).await;
    let handle = session
        .peer()
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(call("hang", json!({})))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.calls() == 0 {
        assert!(
            Instant::now() < deadline,
            "the call never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.cancel(Some("changed my mind".into())).await.unwrap();
    while upstream.cancellations() == 0 {
        assert!(
            Instant::now() < deadline,
            "the upstream never saw the cancellation"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let record = loop {
        let found = cp.audit_records().into_iter().find(|r| r["tool"] == "hang");
        if let Some(record) = found {
            break record;
        }
        assert!(Instant::now() < deadline, "no audit record");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(record["outcome"], "cancelled");
    assert_eq!(record["front_door"], "mcp");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_timeout_is_a_clean_json_rpc_error() {
    let (upstream, cp) = test_catalog().await;
    let (session, _) = connect(&cp, TESTER_TOKEN).await;
    let error = mcp_error(session.call_tool(call("hang", json!({}))).await);
    assert_eq!(error.code, ErrorCode(-32011));
    assert_eq!(error.data.as_ref().unwrap()["code"], "upstream_timeout");
    let text = format!("{error:?}");
    assert!(
        !text.contains(&upstream.url) && !text.contains("127.0.0.1"),
        "{text}"
    );
    // The upstream was told to stop.
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.cancellations() == 0 {
        assert!(
            Instant::now() < deadline,
            "the timed-out call was not cancelled upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    session
        .peer()
        .send_request(ClientRequest::PingRequest(Default::default()))
        .await
        .unwrap();
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

fn raw_post(
    cp: &ControlPlane,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    let mut request = cp
        .http
        .post(cp.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn http_level_rules_apply_before_any_message_is_read() {
    let cp = ControlPlane::start(&format!(
        "{}http:\n  max_body_bytes: 4096\n",
        catalog("", "", &[]).replace("servers:\ntools:\n", "servers: {}\ntools: {}\n")
    ));
    for token in [None, Some("wrong-token")] {
        let response = raw_post(&cp, token, INITIALIZE).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthenticated");
        let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
        assert_eq!(record["action"], "connect");
        assert_eq!(record["front_door"], "mcp");
    }
    // DNS rebinding: a browser origin that is not allowed.
    let response = raw_post(&cp, Some(TESTER_TOKEN), INITIALIZE)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN);
    let response = raw_post(&cp, Some(TESTER_TOKEN), INITIALIZE)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN);
    // Over the configured body limit.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(8192)
    );
    let response = reqwest::Client::new()
        .post(cp.url("/mcp"))
        .bearer_auth(TESTER_TOKEN)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Malformed JSON gets the spec's parse error; JSON that is no JSON-RPC
    // message gets invalid request.
    for (body, code) in [
        ("{not json", -32700),
        (r#"{"hello":"world"}"#, -32600),
        ("[1]", -32600),
    ] {
        let response = raw_post(&cp, Some(TESTER_TOKEN), body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            reqwest::StatusCode::BAD_REQUEST,
            "{body}"
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["jsonrpc"], "2.0");
        assert_eq!(error["id"], Value::Null);
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
        let record = cp
            .audit_record(error["error"]["data"]["trace_id"].as_str().unwrap())
            .await;
        assert_eq!(record["outcome"], "bad_request");
        assert_eq!(record["agent_id"], "tester-1");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stateless_mode_serves_initialize_clients_without_sessions() {
    let upstream = test_upstream(0).await;
    let servers = format!("  svc:\n    http: {{url: {}}}\n", upstream.url);
    let cp = ControlPlane::start(&format!(
        "{}http:\n  mcp_sessions: false\n",
        catalog(&servers, "  echo: {server: svc}\n", &["echo"])
    ));
    cp.wait_all_ready().await;
    let response = raw_post(&cp, Some(TESTER_TOKEN), INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert!(response.headers().get("mcp-session-id").is_none());
    let (session, _) = connect(&cp, TESTER_TOKEN).await;
    assert_eq!(tool_names(&session).await, ["echo"]);
    let result = session
        .call_tool(call("echo", json!({ "message": "hi" })))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["echo"]["message"], "hi");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stdio_bridge_relays_a_local_client_to_the_control_plane() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let mut command = tokio::process::Command::new(crate::common::binary());
    command
        .args([
            "--log-level",
            "warn",
            "connect",
            "--url",
            &cp.url("/mcp"),
            "--token-env",
            "AGENT_TOKEN",
        ])
        .env("AGENT_TOKEN", ANALYST_TOKEN);
    let (progress, _rx) = mpsc::unbounded_channel();
    let session = Client {
        progress,
        changed: None,
        samples: false,
    }
    .serve(TokioChildProcess::new(command).unwrap())
    .await
    .expect("initialize through the bridge");
    assert_eq!(tool_names(&session).await, ["read_positions", "run_report"]);
    let result = session
        .call_tool(call(
            "run_report",
            json!({ "desk": "equities", "report": "risk" }),
        ))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["desk"], "equities");
    let forbidden = mcp_error(session.call_tool(call("execute_trade", json!({}))).await);
    assert_eq!(forbidden.code, ErrorCode::INVALID_PARAMS);
    let record = cp
        .audit_records()
        .into_iter()
        .find(|r| r["tool"] == "run_report")
        .expect("the bridged call is audited");
    assert_eq!(record["agent_id"], "agent-42");
    assert_eq!(record["front_door"], "mcp");
}

#[test]
fn the_stdio_bridge_refuses_to_start_without_a_token() {
    let output = std::process::Command::new(crate::common::binary())
        .args([
            "connect",
            "--url",
            "http://127.0.0.1:9/mcp",
            "--token-env",
            "MCP_CP_TEST_UNSET_TOKEN",
        ])
        .env_remove("MCP_CP_TEST_UNSET_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("MCP_CP_TEST_UNSET_TOKEN is not set"),
        "{stderr}"
    );
}

async fn read(
    session: &Session,
    uri: &str,
) -> Result<rmcp::model::ReadResourceResult, ServiceError> {
    session
        .read_resource(rmcp::model::ReadResourceRequestParams::new(uri))
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn resources_prompts_and_completions_follow_each_roles_grants() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let (analyst, _) = connect(&cp, ANALYST_TOKEN).await;
    let (trader, _) = connect(&cp, TRADER_TOKEN).await;

    let uris = |resources: Vec<rmcp::model::Resource>| {
        resources.into_iter().map(|r| r.uri).collect::<Vec<_>>()
    };
    assert_eq!(
        uris(analyst.list_all_resources().await.unwrap()),
        ["research://notes/daily"]
    );
    let mut trader_uris = uris(trader.list_all_resources().await.unwrap());
    trader_uris.sort();
    assert_eq!(
        trader_uris,
        ["research://notes/daily", "research://restricted/limits"]
    );
    let templates = analyst.list_all_resource_templates().await.unwrap();
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].uri_template, "research://desks/{desk}/summary");
    assert!(
        trader
            .list_all_resource_templates()
            .await
            .unwrap()
            .is_empty()
    );

    let summary = read(&analyst, "research://desks/fx/summary").await.unwrap();
    let text = serde_json::to_string(&summary).unwrap();
    assert!(text.contains("Summary for the fx desk"), "{text}");
    // Outside the role (a narrower set carves it out), unknown, or an
    // address: the same refusal.
    let restricted = mcp_error(read(&analyst, "research://restricted/limits").await);
    let unknown = mcp_error(read(&analyst, "research://nowhere").await);
    let address = mcp_error(read(&analyst, "http://127.0.0.1:9/secret").await);
    for error in [&restricted, &unknown, &address] {
        assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
        assert_eq!(error.message, restricted.message);
    }
    let limits = read(&trader, "research://restricted/limits").await.unwrap();
    assert!(serde_json::to_string(&limits).unwrap().contains("Limits:"));

    let prompts = analyst.list_all_prompts().await.unwrap();
    assert_eq!(prompts.len(), 1);
    assert_eq!(prompts[0].name, "desk_briefing");
    assert!(trader.list_all_prompts().await.unwrap().is_empty());
    let arguments = json!({ "desk": "equities" }).as_object().unwrap().clone();
    let prompt = analyst
        .get_prompt(
            rmcp::model::GetPromptRequestParams::new("desk_briefing")
                .with_arguments(arguments.clone()),
        )
        .await
        .unwrap();
    assert!(
        serde_json::to_string(&prompt)
            .unwrap()
            .contains("briefing for the equities desk")
    );
    let refused = mcp_error(
        trader
            .get_prompt(
                rmcp::model::GetPromptRequestParams::new("desk_briefing").with_arguments(arguments),
            )
            .await,
    );
    assert_eq!(refused.code, ErrorCode::INVALID_PARAMS);

    let desks = analyst
        .complete_prompt_simple("desk_briefing", "desk", "e")
        .await
        .unwrap();
    assert_eq!(desks, ["equities"]);
    let desks = analyst
        .complete_resource_simple("research://desks/{desk}/summary", "desk", "f")
        .await
        .unwrap();
    assert_eq!(desks, ["fixed-income", "fx"]);
    let refused = mcp_error(
        trader
            .complete_prompt_simple("desk_briefing", "desk", "e")
            .await,
    );
    assert_eq!(refused.code, ErrorCode::INVALID_PARAMS);

    let actions: Vec<Value> = cp
        .audit_records()
        .into_iter()
        .filter(|r| r["action"] == "read_resource" && r["outcome"] == "denied_role")
        .collect();
    assert_eq!(actions.len(), 3, "{actions:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_whose_view_changes_hear_tools_list_changed() {
    let port = crate::common::free_port();
    let servers = format!("  svc:\n    http: {{url: \"http://127.0.0.1:{port}/mcp\"}}\n");
    let cp = ControlPlane::start(&catalog(&servers, "  echo: {server: svc}\n", &["echo"]));
    cp.wait_readyz("svc down", |b| b["status"] == "ready").await;
    let watch = |token: &'static str| {
        let cp = &cp;
        async move {
            let (progress, _) = mpsc::unbounded_channel();
            let (changed, rx) = mpsc::unbounded_channel();
            let session = Client {
                progress,
                changed: Some(changed),
                samples: false,
            }
            .serve(transport(cp, token))
            .await
            .unwrap();
            (session, rx)
        }
    };
    let (tester, mut tester_changes) = watch(TESTER_TOKEN).await;
    let (nobody, mut nobody_changes) = watch(ANALYST_TOKEN).await;
    assert!(tool_names(&tester).await.is_empty(), "the server is down");

    let _upstream = test_upstream(port).await;
    let change = tokio::time::timeout(Duration::from_secs(30), tester_changes.recv())
        .await
        .expect("tools/list_changed")
        .unwrap();
    assert_eq!(change, "tools", "{}", cp.stderr_text());
    assert_eq!(tool_names(&tester).await, ["echo"]);
    // The other role sees nothing of that server: it is not told anything.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(nobody_changes.try_recv().is_err());
    assert!(tool_names(&nobody).await.is_empty());
}

/// A session that reports list changes and resource updates.
async fn watching(cp: &ControlPlane, token: &str) -> (Session, mpsc::UnboundedReceiver<String>) {
    let (progress, _) = mpsc::unbounded_channel();
    let (changed, rx) = mpsc::unbounded_channel();
    let session = Client {
        progress,
        changed: Some(changed),
        samples: false,
    }
    .serve(transport(cp, token))
    .await
    .unwrap();
    (session, rx)
}

// `resources/subscribe` belongs to the initialize-based revisions tested here.
#[allow(deprecated)]
#[tokio::test(flavor = "multi_thread")]
async fn resource_updates_reach_only_subscribed_sessions_over_one_upstream_subscription() {
    use crate::common::upstream::DOC_URI;
    let upstream = test_upstream(0).await;
    let servers = format!("  svc:\n    http: {{url: {}}}\n", upstream.url);
    let yaml = catalog(&servers, "  touch: {server: svc}\n", &["touch"])
        .replace(
            "tools:\n",
            "resources:\n  docs: {server: svc, uri_prefix: \"test://\"}\ntools:\n",
        )
        .replace(
            "tester: [touch]",
            "tester: {tools: [touch], resources: [docs]}",
        );
    let cp = ControlPlane::start(&yaml);
    cp.wait_all_ready().await;
    let (first, mut first_updates) = watching(&cp, TESTER_TOKEN).await;
    let (second, mut second_updates) = watching(&cp, TESTER_TOKEN).await;
    let (bystander, mut bystander_updates) = watching(&cp, TESTER_TOKEN).await;
    let uris: Vec<_> = first
        .list_all_resources()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.uri)
        .collect();
    assert_eq!(uris, [DOC_URI]);
    for session in [&first, &second] {
        session
            .subscribe(rmcp::model::SubscribeRequestParams::new(DOC_URI))
            .await
            .unwrap();
    }
    assert_eq!(
        upstream.subscriptions(),
        1,
        "one upstream subscription for both sessions"
    );
    // A session without the grant cannot subscribe.
    let (outsider, _) = watching(&cp, ANALYST_TOKEN).await;
    let refused = mcp_error(
        outsider
            .subscribe(rmcp::model::SubscribeRequestParams::new(DOC_URI))
            .await,
    );
    assert_eq!(refused.code, ErrorCode::INVALID_PARAMS);

    bystander.call_tool(call("touch", json!({}))).await.unwrap();
    for updates in [&mut first_updates, &mut second_updates] {
        let update = loop {
            let message = tokio::time::timeout(Duration::from_secs(10), updates.recv())
                .await
                .expect("resource update")
                .unwrap();
            if message.starts_with("updated") {
                break message;
            }
        };
        assert_eq!(update, format!("updated {DOC_URI}"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(message) = bystander_updates.try_recv() {
        assert!(
            !message.starts_with("updated"),
            "an unsubscribed session got {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_session_is_gone() {
    let cp = ControlPlane::start_example();
    let response = raw_post(&cp, Some(ANALYST_TOKEN), INITIALIZE)
        .send()
        .await
        .unwrap();
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let deleted = cp
        .http
        .delete(cp.url("/mcp"))
        .bearer_auth(ANALYST_TOKEN)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    let response = raw_post(&cp, Some(ANALYST_TOKEN), ping)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstreams_sampling_request_reaches_only_the_calling_client() {
    let upstream = test_upstream(0).await;
    let servers = format!("  svc:\n    http: {{url: {}}}\n", upstream.url);
    let cp = ControlPlane::start(&catalog(&servers, "  ask: {server: svc}\n", &["ask"]));
    cp.wait_all_ready().await;
    let connect_as = |samples: bool| {
        let cp = &cp;
        async move {
            let (progress, _) = mpsc::unbounded_channel();
            Client {
                progress,
                changed: None,
                samples,
            }
            .serve(transport(cp, TESTER_TOKEN))
            .await
            .unwrap()
        }
    };
    let sampler = connect_as(true).await;
    let _bystander = connect_as(true).await;
    let plain = connect_as(false).await;

    let answer = sampler.call_tool(call("ask", json!({}))).await.unwrap();
    let text = &answer.content[0].as_text().unwrap().text;
    assert_eq!(answer.is_error, Some(false), "{text}");
    assert!(text.contains("42, sampled by the agent"), "{text}");

    // A client without the capability: the upstream gets the spec's error at once.
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        plain.call_tool(call("ask", json!({}))),
    )
    .await
    .expect("no hang")
    .unwrap();
    assert_eq!(answer.is_error, Some(true));
    assert_eq!(
        answer.content[0].as_text().unwrap().text,
        "client refused: -32601"
    );
}
