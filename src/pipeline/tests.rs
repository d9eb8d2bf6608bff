//! The stages against in-process fakes, without the binary: an upstream
//! MCP server that answers from a table (over loopback HTTP, as a real
//! one is reached), and an audit sink that keeps records in memory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData, InputRequest,
    InputRequiredResult, JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, ServerResult, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;

use super::stage::{Answer, Stage, run};
use super::{Assertions, CallContext, Exchange, Pipeline, PipelineError, ToolCall};
use crate::audit::AuditLog;
use crate::audit::record::StoredRecord;
use crate::audit::spool::{Sink, Spooled};
use crate::config::FailureMode;
use crate::identity::Presented;
use crate::live::Live;
use crate::upstream::Continuation;
use crate::vocabulary::{Action, FrontDoor};

/// An MCP server whose tools answer from a table (tool name -> text), and
/// that notes, as each call arrives, the outcomes the audit sink already
/// holds.
#[derive(Clone)]
struct Table {
    answers: Arc<BTreeMap<&'static str, &'static str>>,
    calls: Arc<AtomicUsize>,
    memory: Memory,
    durable_at_call: Arc<Mutex<Vec<Vec<String>>>>,
}

impl ServerHandler for Table {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema: JsonObject = serde_json::from_str(r#"{"type":"object"}"#).unwrap();
        let schema = Arc::new(schema);
        let tools = (self.answers.keys())
            .map(|name| Tool::new(*name, "answers from the table", schema.clone()))
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let records = self.memory.records();
        let outcomes = records.iter().map(|r| r["outcome"].to_string());
        (self.durable_at_call.lock().unwrap()).push(outcomes.collect());
        if request.name == "ask" {
            return Ok(ask(request));
        }
        let answer = self.answers.get(&*request.name).copied().unwrap_or("?");
        Ok(CallToolResult::success(vec![ContentBlock::text(answer)]).into())
    }
}

/// `ask` wants a confirmation first (a multi round-trip request, with the
/// state `round-1`), then answers with the state it got back.
fn ask(request: CallToolRequestParams) -> CallToolResponse {
    match request.request_state {
        None => {
            let confirm: InputRequest = serde_json::from_value(serde_json::json!({
                "method": "elicitation/create",
                "params": {"mode": "form", "message": "Confirm?", "requestedSchema": {
                    "type": "object", "properties": {"ok": {"type": "boolean"}}}}
            }))
            .unwrap();
            let inputs = BTreeMap::from([("confirm".to_string(), confirm)]);
            InputRequiredResult::new(Some(inputs), Some("round-1".into())).into()
        }
        Some(state) => {
            let answer = format!("confirmed:{state}");
            CallToolResult::success(vec![ContentBlock::text(answer)]).into()
        }
    }
}

/// Serve `table` at `http://127.0.0.1:PORT/mcp`; returns the URL.
async fn serve(table: Table) -> String {
    let service: StreamableHttpService<Table, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(table.clone()),
        Default::default(),
        StreamableHttpServerConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let router = axum::Router::new().nest_service("/mcp", service);
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// Audit records as the sink received them, in order.
#[derive(Clone, Default)]
struct Memory(Arc<Mutex<Vec<Value>>>);

impl Memory {
    fn records(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }
}

impl Sink for Memory {
    fn name(&self) -> &str {
        "memory"
    }

    /// Slow, as a remote store is: a record is in memory only after a
    /// while, so a call that went out before its intent was durable would
    /// find the sink still empty.
    fn write<'a>(&'a mut self, batch: &'a [StoredRecord]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut held = self.0.lock().unwrap();
            held.extend(batch.iter().map(|r| serde_json::from_str(&r.json).unwrap()));
            Ok(())
        })
    }
}

const TOKEN: &str = "stage-test-token";
/// Another agent of the same role.
const OTHER_TOKEN: &str = "stage-test-token-2";

/// A pipeline over a catalog routing the table's `quote` and `trade` to
/// one server; the role may use `quote` only; the Rego policy denies a
/// quote for `ACME`.
struct Fixture {
    pipeline: Pipeline,
    memory: Memory,
    calls: Arc<AtomicUsize>,
    durable_at_call: Arc<Mutex<Vec<Vec<String>>>>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let table = Table {
        answers: Arc::new(BTreeMap::from([
            ("quote", "42.0"),
            ("trade", "done"),
            ("ask", ""),
        ])),
        calls: Arc::default(),
        memory: Memory::default(),
        durable_at_call: Arc::default(),
    };
    let (calls, memory) = (table.calls.clone(), table.memory.clone());
    let durable_at_call = table.durable_at_call.clone();
    let url = serve(table).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("authz.rego"),
        "package mcp.authz\n\nallow if input.arguments.symbol != \"ACME\"\n\
         reasons contains \"ACME is restricted\" if input.arguments.symbol == \"ACME\"\n",
    )
    .unwrap();
    let catalog = format!(
        "environment: test\npolicy: {{files: [authz.rego]}}\n\
         servers:\n  table: {{http: {{url: \"{url}\"}}, credential: {{provider: none}}, protocol: \"2026-07-28\"}}\n\
         tools:\n  quote: {{server: table}}\n  trade: {{server: table}}\n  ask: {{server: table}}\n\
         roles:\n  viewer: {{tools: [quote, ask]}}\n\
         agents:\n  viewer-1: {{role: viewer, token_sha256: {}}}\n  viewer-2: {{role: viewer, token_sha256: {}}}\n",
        crate::identity::token_sha256_hex(TOKEN),
        crate::identity::token_sha256_hex(OTHER_TOKEN),
    );
    let path = dir.path().join("catalog.yaml");
    std::fs::write(&path, catalog).unwrap();
    let live = Live::start(&path, None, "http://127.0.0.1:1/jwks".into()).unwrap();
    let sink = Spooled::new(
        Box::new(memory.clone()),
        dir.path().join("spool.jsonl"),
        std::time::Duration::from_secs(5),
    );
    let audit = AuditLog::start(vec![sink], FailureMode::FailClosed, None, Vec::new());
    // The table's server connects in the background.
    for _ in 0..100 {
        if live.current().upstreams.settled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Fixture {
        pipeline: Pipeline::new(live, audit),
        memory,
        calls,
        durable_at_call,
        _dir: dir,
    }
}

fn arguments(symbol: &str) -> JsonObject {
    serde_json::from_value(serde_json::json!({ "symbol": symbol })).unwrap()
}

async fn call(
    fixture: &Fixture,
    tool: &str,
    symbol: &str,
) -> Result<CallToolResult, PipelineError> {
    let answer = call_as(fixture, TOKEN, ToolCall::new(tool, arguments(symbol))).await;
    answer.map(|answer| match answer {
        ServerResult::CallToolResult(result) => result,
        other => panic!("not a tool result: {other:?}"),
    })
}

async fn call_as(fixture: &Fixture, token: &str, call: ToolCall<'_>) -> Answer {
    let ctx = CallContext::new(FrontDoor::Rest, None, None);
    let who = Presented::Bearer(Some(token));
    fixture
        .pipeline
        .call(&ctx, who, Assertions::default(), call)
        .await
}

#[tokio::test]
async fn an_allowed_call_reaches_the_upstream_after_its_intent_is_recorded() {
    let fixture = fixture().await;
    let result = call(&fixture, "quote", "XYZ").await.unwrap();
    assert_eq!(result.content[0].as_text().unwrap().text, "42.0");
    assert_eq!(fixture.calls.load(Ordering::SeqCst), 1);
    // When the call arrived, its intent was already in the sink.
    let durable = fixture.durable_at_call.lock().unwrap().clone();
    assert_eq!(durable, [["\"unfinished\""]]);
    let records = fixture.memory.records();
    let outcomes: Vec<&str> = records
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["unfinished", "ok"]);
    assert_eq!(records[0]["id"], records[1]["id"]);
    let version = fixture.pipeline.live.current().version.clone();
    assert_eq!(records[1]["catalog_version"], &*version);
    assert_eq!(records[1]["server"], "table");
    assert_eq!(records[1]["policy"], "allow");
}

#[tokio::test]
async fn a_target_outside_the_view_or_denied_by_policy_never_reaches_the_upstream() {
    let fixture = fixture().await;
    // `trade` exists but the role does not grant it: refused like an unknown tool.
    let refused = call(&fixture, "trade", "XYZ").await.unwrap_err();
    assert_eq!(refused.code(), "forbidden");
    assert_eq!(call(&fixture, "nothing", "XYZ").await.unwrap_err(), refused);
    // The policy denies ACME with its reason.
    let denied = call(&fixture, "quote", "ACME").await.unwrap_err();
    assert_eq!(
        denied,
        PipelineError::PolicyDenied(vec!["ACME is restricted".into()])
    );
    assert_eq!(fixture.calls.load(Ordering::SeqCst), 0);
    let records = fixture.memory.records();
    let outcomes: Vec<&str> = records
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["denied_role", "denied_role", "denied_policy"]);
    // The audit trail learns where a refused call would have gone.
    assert_eq!(records[0]["server"], "table");
    assert_eq!(records[1]["server"], "");
    assert_eq!(records[2]["reasons"][0], "ACME is restricted");
}

#[tokio::test]
async fn an_impersonating_body_is_refused_after_authentication() {
    let fixture = fixture().await;
    let ctx = CallContext::new(FrontDoor::Rest, None, None);
    let assertions = Assertions {
        role: Some("admin"),
        ..Assertions::default()
    };
    let who = Presented::Bearer(Some(TOKEN));
    let refused = (fixture.pipeline)
        .call(
            &ctx,
            who,
            assertions,
            ToolCall::new("quote", arguments("XYZ")),
        )
        .await
        .unwrap_err();
    assert_eq!(refused, PipelineError::Impersonation("agent_role"));
    let record = &fixture.memory.records()[0];
    assert_eq!(record["outcome"], "impersonation");
    assert_eq!(record["agent_id"], "viewer-1");
}

/// A stage that notes what it sees on both phases, and can refuse.
struct Probe {
    name: &'static str,
    refuse: bool,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Stage for Probe {
    fn name(&self) -> &'static str {
        self.name
    }

    fn request<'a, 'e>(
        &'a self,
        _exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        self.seen.lock().unwrap().push(format!("{} in", self.name));
        let result = match self.refuse {
            true => Err(PipelineError::InvalidRequest(self.name.into())),
            false => Ok(()),
        };
        Box::pin(std::future::ready(result))
    }

    fn response<'a, 'e>(
        &'a self,
        _exchange: &'a mut Exchange<'e>,
        answer: &'a mut Answer,
    ) -> BoxFuture<'a, ()> {
        let how = if answer.is_ok() { "ok" } else { "refused" };
        self.seen
            .lock()
            .unwrap()
            .push(format!("{} out {how}", self.name));
        Box::pin(std::future::ready(()))
    }
}

#[tokio::test]
async fn the_way_back_runs_innermost_first_through_every_stage_entered() {
    let fixture = fixture().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let probe = |name, refuse| -> Box<dyn Stage> {
        Box::new(Probe {
            name,
            refuse,
            seen: seen.clone(),
        })
    };
    let ctx = CallContext::new(FrontDoor::Rest, None, None);
    let snapshot = fixture.pipeline.live.current();
    let reached = Arc::new(AtomicUsize::new(0));
    let inner = async |_: &mut Exchange<'_>| -> Answer {
        reached.fetch_add(1, Ordering::SeqCst);
        Ok(ServerResult::empty(()))
    };

    let stages = [probe("a", false), probe("b", false)];
    let mut exchange = Exchange::new(
        &ctx,
        snapshot.clone(),
        Action::Call,
        Presented::Bearer(None),
    );
    assert!(run(&stages, &mut exchange, inner).await.is_ok());
    assert_eq!(reached.load(Ordering::SeqCst), 1);
    assert_eq!(
        std::mem::take(&mut *seen.lock().unwrap()),
        ["a in", "b in", "b out ok", "a out ok"]
    );

    // A refusal stops the way in and travels back, the refusing stage included.
    let stages = [probe("a", false), probe("b", true), probe("c", false)];
    let mut exchange = Exchange::new(&ctx, snapshot, Action::Call, Presented::Bearer(None));
    let refused = run(
        &stages,
        &mut exchange,
        async |_: &mut Exchange<'_>| -> Answer {
            unreachable!("a refused request reaches nothing")
        },
    )
    .await;
    assert_eq!(
        refused.unwrap_err(),
        PipelineError::InvalidRequest("b".into())
    );
    assert_eq!(
        *seen.lock().unwrap(),
        ["a in", "b in", "b out refused", "a out refused"]
    );
}

/// A retry of `tool` with `state` and a confirmation.
fn retry<'a>(tool: &'a str, state: &str) -> ToolCall<'a> {
    let mut call = ToolCall::new(tool, arguments("XYZ"));
    let confirmed = serde_json::json!({"action": "accept", "content": {"ok": true}});
    call.continuation = Continuation {
        input_responses: Some(BTreeMap::from([("confirm".to_string(), confirmed)])),
        request_state: Some(state.to_string()),
    };
    call
}

#[tokio::test]
async fn a_request_state_reaches_the_upstream_as_issued_and_only_from_its_own_caller() {
    let fixture = fixture().await;
    let asked = call_as(&fixture, TOKEN, ToolCall::new("ask", arguments("XYZ"))).await;
    let Ok(ServerResult::InputRequiredResult(asked)) = asked else {
        panic!("not input_required: {asked:?}");
    };
    assert!(asked.input_requests.unwrap().contains_key("confirm"));
    let sealed = asked.request_state.unwrap();
    assert!(
        sealed.starts_with("mcpcp1.") && sealed.ends_with(".round-1"),
        "{sealed}"
    );

    let done = call_as(&fixture, TOKEN, retry("ask", &sealed)).await;
    let Ok(ServerResult::CallToolResult(done)) = done else {
        panic!("not complete: {done:?}");
    };
    assert_eq!(done.content[0].as_text().unwrap().text, "confirmed:round-1");
    assert_eq!(fixture.calls.load(Ordering::SeqCst), 2);

    // Another agent, another tool, a forged seal, a bare state: refused
    // before the upstream, and recorded.
    let forged = sealed.replacen("mcpcp1.", "mcpcp1.A", 1);
    for (token, call) in [
        (OTHER_TOKEN, retry("ask", &sealed)),
        (TOKEN, retry("quote", &sealed)),
        (TOKEN, retry("ask", &forged)),
        (TOKEN, retry("ask", "round-1")),
    ] {
        let refused = call_as(&fixture, token, call).await.unwrap_err();
        assert!(
            matches!(refused, PipelineError::InvalidRequest(_)),
            "{refused:?}"
        );
    }
    assert_eq!(fixture.calls.load(Ordering::SeqCst), 2);
    let records = fixture.memory.records();
    let refused = records.iter().filter(|r| r["outcome"] == "bad_request");
    assert_eq!(refused.count(), 4, "{records:?}");
}
