//! The MCP front door (`/mcp`) driven by rmcp's own client, through the
//! control plane, to real upstream servers over stdio and Streamable HTTP.

// The tests drive sampling (deprecated from the 2026-07-28 revision on).
#![allow(deprecated)]

mod eras;
mod holes;
mod refusals;
mod reload;
mod resources;
mod rounds;
mod tasks;
mod tools;
mod transport;

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
/// receives and, when `answers` names it, answers sampling and elicitation
/// requests in its own name (reporting each request to `changed`).
#[derive(Clone)]
struct Client {
    progress: mpsc::UnboundedSender<ProgressNotificationParam>,
    changed: Option<mpsc::UnboundedSender<String>>,
    answers: Option<&'static str>,
}

impl Client {
    fn report(&self, event: String) {
        if let Some(changed) = &self.changed {
            let _ = changed.send(event);
        }
    }
}

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        // The newest initialize-based revision: sessions, server notifications.
        let capabilities = if self.answers.is_some() {
            (ClientCapabilities::builder().enable_sampling())
                .enable_elicitation()
                .build()
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
        let name = self.answers.expect("sampling only where declared");
        self.report("sampling".into());
        Ok(rmcp::model::CreateMessageResult::new(
            rmcp::model::SamplingMessage::assistant_text(format!("42, sampled by {name}")),
            "test-model".into(),
        ))
    }

    async fn create_elicitation(
        &self,
        _: rmcp::model::ElicitRequestParams,
        _: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        let name = self.answers.expect("elicitation only where declared");
        self.report("elicitation".into());
        Ok(
            rmcp::model::ElicitResult::new(rmcp::model::ElicitationAction::Accept)
                .with_content(json!({ "by": name })),
        )
    }

    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.report(format!("log {:?} {}", params.level, params.data));
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.report("tools".into());
    }

    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.report(format!("updated {}", params.uri));
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
        answers: None,
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
        answers: None,
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

/// End a session over raw HTTP (`DELETE /mcp`).
async fn delete_session(cp: &ControlPlane, token: &str, session: &str) -> reqwest::Response {
    cp.http
        .delete(cp.url("/mcp"))
        .bearer_auth(token)
        .header("mcp-session-id", session)
        .send()
        .await
        .unwrap()
}

async fn read(
    session: &Session,
    uri: &str,
) -> Result<rmcp::model::ReadResourceResult, ServiceError> {
    session
        .read_resource(rmcp::model::ReadResourceRequestParams::new(uri))
        .await
}

/// A session that reports list changes and resource updates.
async fn watching(cp: &ControlPlane, token: &str) -> (Session, mpsc::UnboundedReceiver<String>) {
    let (progress, _) = mpsc::unbounded_channel();
    let (changed, rx) = mpsc::unbounded_channel();
    let session = Client {
        progress,
        changed: Some(changed),
        answers: None,
    }
    .serve(transport(cp, token))
    .await
    .unwrap();
    (session, rx)
}
