//! The cost of the per-call stages that have no bench of their own (Rego:
//! `benches/policy.rs`, mint: `benches/mint.rs`, audit: `benches/audit.rs`),
//! on a catalog of a realistic size: 500 agents, 200 tools on 20 servers,
//! 10 roles.
//!
//! - authentication: a service token checked against every agent (in
//!   constant time, so the cost grows with the number of agents);
//! - view: the public names a role may see (`tools/list`, `/tools`);
//! - limit: a call through three rate limits (agent, role, tool per agent);
//! - JSON-RPC: decoding a `tools/call` request and encoding its result, as
//!   the `/mcp` front door does on every call.
//!
//! `cargo bench --bench stages`

use std::fmt::Write;

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_control_plane::discovery::{self, View};
use mcp_control_plane::identity::{Presented, token_sha256_hex};
use mcp_control_plane::live::Live;
use mcp_control_plane::router::limits::Call;
use rmcp::model::{
    CallToolResult, ClientJsonRpcMessage, ContentBlock, RequestId, ServerJsonRpcMessage,
    ServerResult,
};
use serde_json::json;

const AGENTS: usize = 500;
const TOOLS: usize = 200;
const SERVERS: usize = 20;
const ROLES: usize = 10;

/// A catalog of the sizes above. Its servers are never reached: nothing
/// here calls one.
fn catalog() -> String {
    let mut text = String::from(
        "environment: bench\npolicy: allow-all\n\
         limits:\n  agent: 1000000/s\n  role: 1000000/s\n  tool: 1000000/s per agent\n\
         servers:\n",
    );
    for s in 0..SERVERS {
        // Port 9 (discard) on loopback: nothing answers there.
        writeln!(
            text,
            "  s{s}: {{http: {{url: \"http://127.0.0.1:9/mcp\"}}}}"
        )
        .unwrap();
    }
    text.push_str("tools:\n");
    for t in 0..TOOLS {
        writeln!(text, "  tool_{t}: {{server: s{}}}", t % SERVERS).unwrap();
    }
    text.push_str("roles:\n");
    for r in 0..ROLES {
        // Each role grants every other tool of half the servers.
        let tools: Vec<String> = (0..TOOLS)
            .filter(|t| (t + r) % 2 == 0)
            .map(|t| format!("tool_{t}"))
            .collect();
        writeln!(text, "  role_{r}: {{tools: [{}]}}", tools.join(", ")).unwrap();
    }
    text.push_str("agents:\n");
    for a in 0..AGENTS {
        let hash = token_sha256_hex(&format!("token-{a}"));
        writeln!(
            text,
            "  agent_{a}: {{role: role_{}, token_sha256: {hash}}}",
            a % ROLES
        )
        .unwrap();
    }
    text
}

fn stages(c: &mut Criterion) {
    // As the binary does at start.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.yaml");
    std::fs::write(&path, catalog()).unwrap();
    let live = runtime.block_on(async {
        Live::start(
            &path,
            Some(dir.path().join("key.pem")),
            "http://127.0.0.1/jwks".into(),
        )
        .unwrap()
    });
    let snapshot = live.current();

    let token = format!("token-{}", AGENTS / 2);
    let caller = runtime
        .block_on(snapshot.authenticate(Presented::Bearer(Some(&token))))
        .unwrap();
    c.bench_function(
        &format!("authentication: a service token among {AGENTS} agents"),
        |b| {
            b.to_async(&runtime)
                .iter(|| snapshot.authenticate(Presented::Bearer(Some(&token))))
        },
    );

    let shows = |_: mcp_control_plane::vocabulary::Target<'_>| true;
    let view = View {
        catalog: &snapshot.catalog,
        upstreams: &snapshot.upstreams,
        caller: &caller,
        endpoint: None,
        shows: &shows,
    };
    assert_eq!(discovery::visible_tools(&view).len(), TOOLS / 2);
    c.bench_function(
        &format!("view: the {} tool names of a role", TOOLS / 2),
        |b| b.iter(|| discovery::visible_tools(std::hint::black_box(&view))),
    );

    // Tool search over a catalog of 1,000 tools, as `search_tools` runs it.
    let many: Vec<rmcp::model::Tool> = (0..1000)
        .map(|t| {
            let words = [
                "report", "trade", "account", "desk", "symbol", "issue", "pull", "file",
            ];
            let (a, b) = (words[t % words.len()], words[(t / 8) % words.len()]);
            let schema =
                json!({"type": "object", "properties": {format!("{b}_id"): {"type": "string"}}});
            rmcp::model::Tool::new(
                format!("{a}_{b}_{t}"),
                format!("Work with the {a} of a {b}, number {t}"),
                std::sync::Arc::new(schema.as_object().unwrap().clone()),
            )
        })
        .collect();
    c.bench_function("search: rank 1,000 tools for a query", |b| {
        b.iter(|| {
            discovery::search::rank(&many, std::hint::black_box("trade report for a desk"), 10)
        })
    });

    // What an exposed server's list changing costs: 1,000 offered names
    // through its rule, applied to the catalog file, compiled.
    let text = catalog().replacen(
        "tools:\n",
        "  github:\n    http: {url: \"http://127.0.0.1:9/mcp\"}\n    expose: {prefix: gh_, include: [\"issue_*\", \"pull_*\"], exclude: [\"*_delete\"]}\ntools:\n",
        1,
    );
    let file = mcp_control_plane::config::parse_str(&text, false, "bench.yaml".as_ref()).unwrap();
    let offered: Vec<String> = (0..1000)
        .map(|i| ["issue", "pull", "repo", "issue_x_delete"][i % 4].to_owned() + &format!("_{i}"))
        .collect();
    c.bench_function("expose: 1,000 offered tools into the catalog", |b| {
        use mcp_control_plane::config::expose::Exposure;
        b.iter(|| {
            let exposure = Exposure::of(&file, |_, _| offered.clone(), &Exposure::default());
            mcp_control_plane::catalog::Catalog::compile(&exposure.apply(&file), ".".as_ref())
        })
    });

    let tool: std::sync::Arc<str> = "tool_42".into();
    let call = Call {
        agent: &caller.agent_id,
        role: &caller.role,
        tool: &tool,
    };
    c.bench_function("limit: a call through three rate limits", |b| {
        // Past the buckets' million calls a second a check refuses, at the same cost.
        b.iter(|| snapshot.limits.check(std::hint::black_box(&call)))
    });

    let request = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "tool_42", "arguments": {"symbol": "AAPL", "quantity": 10}},
    })
    .to_string();
    c.bench_function("JSON-RPC: decode a tools/call request", |b| {
        b.iter(|| {
            serde_json::from_str::<ClientJsonRpcMessage>(std::hint::black_box(&request)).unwrap()
        })
    });
    let mut result = CallToolResult::success(vec![ContentBlock::text("42.0")]);
    result.structured_content = Some(json!({"price": 42.0, "symbol": "AAPL"}));
    let response =
        ServerJsonRpcMessage::response(ServerResult::CallToolResult(result), RequestId::Number(7));
    c.bench_function("JSON-RPC: encode a tools/call result", |b| {
        b.iter(|| serde_json::to_vec(std::hint::black_box(&response)).unwrap())
    });
}

criterion_group!(benches, stages);
criterion_main!(benches);
