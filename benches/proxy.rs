//! The control plane end to end, side by side with a direct call: a fast
//! upstream (Streamable HTTP, stateless, plain JSON, `TCP_NODELAY`, one
//! trivial tool with a small structured result), the control plane in
//! front of it with every pillar on as shipped (service token, a Rego
//! policy, a minted JWT per call, the durable SQLite audit), and a load
//! generator, all on this machine. Run by hand, never as a test:
//!
//! ```text
//! cargo bench --bench proxy -- [--seconds 10] [--connections 32]
//!     [--policy allow-all] [--credential none]
//!     [--audit jsonl|sqlite-power-loss]
//! ```
//!
//! For each path (direct, REST `/invoke`, `/mcp` stateless 2026-07-28,
//! `/mcp` on an initialize session) at 1 connection and at `--connections`,
//! it prints calls/s, p50/p90/p99/p99.9, errors, and the ratio to direct.
//! The flags turn pillars off, to show what each costs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};

const TOKEN: &str = "bench-agent-token";

/// The fast upstream: `quote` answers at once with a small structured result.
#[derive(Clone)]
struct Fast;

impl rmcp::ServerHandler for Fast {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = json!({"type": "object", "properties": {"symbol": {"type": "string"}}});
        let schema = Arc::new(schema.as_object().unwrap().clone());
        let tool = Tool::new("quote", "A price", schema);
        Ok(ListToolsResult::with_all_items(vec![tool]))
    }

    async fn call_tool(
        &self,
        _: CallToolRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let mut result = CallToolResult::success(vec![ContentBlock::text("42.0")]);
        result.structured_content = Some(json!({"price": 42.0}));
        Ok(result.into())
    }
}

async fn serve_fast() -> String {
    let config = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_legacy_session_mode(false)
        .with_sse_keep_alive(None);
    let service: StreamableHttpService<Fast, LocalSessionManager> =
        StreamableHttpService::new(|| Ok(Fast), Default::default(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// The command line: which pillars stay on, and how hard to push.
struct Options {
    seconds: u64,
    connections: usize,
    allow_all: bool,
    no_credential: bool,
    /// `jsonl`, `sqlite-power-loss`, or the shipped SQLite store.
    audit: Option<String>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value =
        |flag: &str| (args.iter().position(|a| a == flag)).and_then(|i| args.get(i + 1).cloned());
    Options {
        seconds: value("--seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
        connections: value("--connections")
            .and_then(|v| v.parse().ok())
            .unwrap_or(32),
        allow_all: value("--policy").as_deref() == Some("allow-all"),
        no_credential: value("--credential").as_deref() == Some("none"),
        audit: value("--audit"),
    }
}

/// The control plane in front of `upstream`, as `options` say; stopped on drop.
struct ControlPlane {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_control_plane(upstream: &str, options: &Options) -> ControlPlane {
    let dir = tempfile::tempdir().unwrap();
    let rego = "package mcp.authz\n\nimport rego.v1\n\ndefault allow := false\n\n\
                allow if {\n\tinput.tool.name == \"quote\"\n\tinput.agent.role == \"desk\"\n\
                \tnot input.arguments.symbol in {\"ACME\"}\n}\n";
    std::fs::write(dir.path().join("authz.rego"), rego).unwrap();
    let policy = if options.allow_all {
        "allow-all".to_string()
    } else {
        "{files: [authz.rego]}".to_string()
    };
    let credential = if options.no_credential {
        ", credential: {provider: none}"
    } else {
        ""
    };
    let audit = match options.audit.as_deref() {
        Some("jsonl") => "audit: {sinks: [jsonl: {path: audit.jsonl}]}\n",
        Some("sqlite-power-loss") => {
            "audit: {sinks: [sqlite: {path: audit.db, durability: power-loss}]}\n"
        }
        _ => "",
    };
    let catalog = format!(
        "environment: bench\npolicy: {policy}\n{audit}\
         servers:\n  fast: {{http: {{url: \"{upstream}\"}}{credential}}}\n\
         tools:\n  quote: {{server: fast}}\n\
         roles:\n  desk: {{tools: [quote]}}\n\
         agents:\n  bench: {{role: desk, token_sha256: {}}}\n",
        mcp_control_plane::identity::token_sha256_hex(TOKEN)
    );
    let path = dir.path().join("catalog.yaml");
    std::fs::write(&path, catalog).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-control-plane"))
        .args(["--log-level", "warn", "serve", "--config"])
        .arg(&path)
        .args(["--listen", "127.0.0.1:0", "--key-file"])
        .arg(dir.path().join("key.pem"))
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the control plane");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .expect("its address");
    ControlPlane {
        child,
        url: format!("http://{addr}"),
        _dir: dir,
    }
}

/// One way of making the call.
#[derive(Clone, Copy, PartialEq)]
enum Path {
    Direct,
    Invoke,
    Stateless,
    Session,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Invoke => "REST /invoke",
            Self::Stateless => "/mcp stateless",
            Self::Session => "/mcp session",
        }
    }
}

fn stateless_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "quote", "arguments": {"symbol": "XYZ"},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {},
                  "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}}}})
}

/// A client for `path`, and how to send one call with it.
struct Caller {
    http: reqwest::Client,
    path: Path,
    url: String,
    session: Option<String>,
}

impl Caller {
    async fn new(path: Path, direct: &str, cp: &str) -> Self {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .unwrap();
        let url = match path {
            Path::Direct => direct.to_string(),
            Path::Invoke => format!("{cp}/invoke"),
            Path::Stateless | Path::Session => format!("{cp}/mcp"),
        };
        let mut caller = Self {
            http,
            path,
            url,
            session: None,
        };
        if path == Path::Session {
            caller.open_session().await;
        }
        caller
    }

    async fn open_session(&mut self) {
        let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"}}});
        let response = self.post(&initialize, None).await.unwrap();
        let session = response.headers().get("mcp-session-id").unwrap();
        self.session = Some(session.to_str().unwrap().to_string());
        let _ = response.bytes().await;
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let _ = self.post(&initialized, None).await.unwrap().bytes().await;
    }

    async fn post(
        &self,
        body: &Value,
        protocol: Option<&str>,
    ) -> reqwest::Result<reqwest::Response> {
        let mut request = (self.http.post(&self.url))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(TOKEN)
            .body(body.to_string());
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        if let Some(protocol) = protocol {
            request = (request.header("mcp-protocol-version", protocol))
                .header("mcp-method", "tools/call")
                .header("mcp-name", "quote");
        }
        request.send().await
    }

    /// One call; whether it succeeded.
    async fn call(&self) -> bool {
        let (body, protocol) = match self.path {
            Path::Invoke => (
                json!({"action": "quote", "payload": {"symbol": "XYZ"}}),
                None,
            ),
            Path::Session => {
                let mut body = stateless_body();
                body["params"].as_object_mut().unwrap().remove("_meta");
                (body, Some("2025-11-25"))
            }
            Path::Direct | Path::Stateless => (stateless_body(), Some("2026-07-28")),
        };
        match self.post(&body, protocol).await {
            Ok(response) if response.status().is_success() => (response.text().await)
                .is_ok_and(|text| text.contains("42") && !text.contains("\"error\"")),
            _ => false,
        }
    }
}

struct Run {
    calls_per_second: f64,
    latencies: Vec<Duration>,
    errors: usize,
}

impl Run {
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index].as_secs_f64() * 1000.0
    }
}

async fn run(path: Path, connections: usize, seconds: u64, direct: &str, cp: &str) -> Run {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for _ in 0..connections {
        let caller = Caller::new(path, direct, cp).await;
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0);
            while Instant::now() < deadline {
                let started = Instant::now();
                if caller.call().await {
                    latencies.push(started.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for worker in workers {
        let (mine, failed) = worker.await.unwrap();
        latencies.extend(mine);
        errors += failed;
    }
    latencies.sort();
    Run {
        calls_per_second: latencies.len() as f64 / seconds as f64,
        latencies,
        errors,
    }
}

#[tokio::main]
async fn main() {
    // reqwest is built without a default TLS provider (none is used here).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = options();
    let direct = serve_fast().await;
    let cp = start_control_plane(&direct, &options);
    // Let the control plane connect to the upstream.
    let ready = format!("{}/readyz", cp.url);
    for _ in 0..100 {
        if reqwest::get(&ready)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "pillars: policy {}, credential {}, audit {} ({} s per run, on this machine's {} cores)",
        if options.allow_all {
            "allow-all"
        } else {
            "rego"
        },
        if options.no_credential {
            "none"
        } else {
            "minted JWT"
        },
        options.audit.as_deref().unwrap_or("sqlite"),
        options.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!(
        "{:<16} {:>5} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8}",
        "path", "conns", "calls/s", "p50 ms", "p90 ms", "p99 ms", "p99.9", "errors", "/direct"
    );
    for connections in [1, options.connections] {
        let mut direct_rate = f64::NAN;
        for path in [Path::Direct, Path::Invoke, Path::Stateless, Path::Session] {
            let result = run(path, connections, options.seconds, &direct, &cp.url).await;
            if path == Path::Direct {
                direct_rate = result.calls_per_second;
            }
            println!(
                "{:<16} {:>5} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>7.0}%",
                path.name(),
                connections,
                result.calls_per_second,
                result.percentile(0.50),
                result.percentile(0.90),
                result.percentile(0.99),
                result.percentile(0.999),
                result.errors,
                100.0 * result.calls_per_second / direct_rate,
            );
        }
    }
}
