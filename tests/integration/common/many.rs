//! A server with many tools, as a GitHub or cloud provider server has: 200
//! of them in families (`issue_00` .. `issue_49`, `pull_*`, `repo_*`, some
//! `*_delete`, one whose name is not a valid public name) and a prompt,
//! listed in pages of 50, and `admin_add`, which adds a tool at run time
//! (or, given a `description`, rewrites that of one it has) and tells the
//! calling session its tools changed.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListPromptsResult,
    ListToolsResult, PaginatedRequestParams, Prompt, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Tools per `tools/list` page.
const PAGE: usize = 50;

/// What `leak_key`, when the server offers it, answers with (among other
/// text): a private key, as a careless server might return one.
pub const LEAKED_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----";

/// The tool names the server starts with.
pub fn generated_names() -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..50 {
        names.extend([
            format!("issue_{i:02}"),
            format!("pull_{i:02}"),
            format!("repo_{i:02}"),
        ]);
    }
    names.extend((0..25).map(|i| format!("issue_{i:02}_delete")));
    names.extend((0..23).map(|i| format!("pull_{i:02}_delete")));
    names.extend(["admin_add".to_owned(), "issue_bad name".to_owned()]);
    names
}

#[derive(Clone)]
pub struct ManyTools {
    names: Arc<Mutex<Vec<String>>>,
    /// Whether it offers the prompt `issue_summary`.
    prompt: bool,
    /// Descriptions rewritten at run time, by tool name.
    descriptions: Arc<Mutex<std::collections::HashMap<String, String>>>,
    /// The names of the tools called, in order.
    called: Arc<Mutex<Vec<String>>>,
    /// The `ttlMs` its tool lists carry, if any.
    ttl_ms: Option<u64>,
}

impl ManyTools {
    /// A server offering `names` (and `admin_add`, always), and the
    /// prompt `issue_summary` when it starts with tools of its own.
    fn new(mut names: Vec<String>) -> Self {
        let prompt = !names.is_empty();
        if !names.iter().any(|n| n == "admin_add") {
            names.push("admin_add".to_owned());
        }
        Self {
            names: Arc::new(Mutex::new(names)),
            prompt,
            descriptions: Arc::default(),
            called: Arc::default(),
            ttl_ms: None,
        }
    }

    /// The tools called so far (`admin_add` included).
    pub fn called(&self) -> Vec<String> {
        self.called.lock().unwrap().clone()
    }
}

impl ServerHandler for ManyTools {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .build();
        ServerConfig::new(capabilities)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let start: usize = (request.and_then(|r| r.cursor))
            .map(|c| c.parse().unwrap())
            .unwrap_or(0);
        let names = self.names.lock().unwrap().clone();
        let rewritten = self.descriptions.lock().unwrap().clone();
        let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}});
        let schema = Arc::new(schema.as_object().unwrap().clone());
        let tools = (names.iter().skip(start).take(PAGE))
            .map(|name| {
                let (family, rest) = name.split_once('_').unwrap_or((name, ""));
                let description = (rewritten.get(name).cloned())
                    .unwrap_or_else(|| format!("Work with {family} {rest} of a repository"));
                Tool::new(name.clone(), description, schema.clone())
            })
            .collect();
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = (start + PAGE < names.len()).then(|| (start + PAGE).to_string());
        result.ttl_ms = self.ttl_ms;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        if !self.names.lock().unwrap().contains(&name) {
            return Err(ErrorData::invalid_params("no such tool", None));
        }
        self.called.lock().unwrap().push(name.clone());
        if name == "leak_key" {
            let text = format!("the deploy key:\n{LEAKED_KEY}\nkeep it safe");
            return Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into());
        }
        if name == "admin_add" {
            let arguments = request.arguments.unwrap_or_default();
            let added = arguments["name"].as_str().unwrap().to_owned();
            match arguments.get("description").and_then(|d| d.as_str()) {
                Some(description) => {
                    let mut rewritten = self.descriptions.lock().unwrap();
                    rewritten.insert(added, description.to_owned());
                }
                None => self.names.lock().unwrap().push(added),
            }
            // A server may change its tools without saying so.
            if arguments.get("silent").is_none() {
                context.peer.notify_tool_list_changed().await.unwrap();
            }
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(format!("called {name}"))]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let prompt = Prompt::new("issue_summary", Some("Summarize an issue"), None);
        let prompts = if self.prompt {
            vec![prompt]
        } else {
            Vec::new()
        };
        Ok(ListPromptsResult::with_all_items(prompts))
    }
}

/// A [`ManyTools`] server on loopback.
pub struct ManyUpstream {
    pub url: String,
    pub handler: ManyTools,
    stop: CancellationToken,
}

impl Drop for ManyUpstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serve [`ManyTools`] offering `names` (and `admin_add`).
pub async fn many_tools_upstream(names: Vec<String>) -> ManyUpstream {
    many_tools_upstream_fresh_for(names, None).await
}

/// [`many_tools_upstream`], its tool lists saying they stay fresh for
/// `ttl_ms` (2026-07-28's `ttlMs`).
pub async fn many_tools_upstream_fresh_for(
    names: Vec<String>,
    ttl_ms: Option<u64>,
) -> ManyUpstream {
    let mut handler = ManyTools::new(names);
    handler.ttl_ms = ttl_ms;
    let stop = CancellationToken::new();
    let accepted = Arc::new(AtomicUsize::new(0));
    let url = super::upstream::serve(handler.clone(), 0, stop.clone(), accepted).await;
    ManyUpstream { url, handler, stop }
}
