//! Hostile servers: an upstream whose `tools/list` never ends (every page
//! has a `nextCursor`, each holding `per_page` tools of about 4 KB), a
//! proxy that garbles answers, and a server that redirects everything.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::response::IntoResponse;
use rmcp::model::{
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct EndlessPages {
    per_page: usize,
    pages: Arc<AtomicUsize>,
}

impl ServerHandler for EndlessPages {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let page: usize = (request.and_then(|r| r.cursor))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        self.pages.fetch_add(1, Ordering::Relaxed);
        let schema = json!({"type": "object"});
        let schema = Arc::new(schema.as_object().unwrap().clone());
        let description = "x".repeat(4000);
        let tools = (0..self.per_page)
            .map(|i| Tool::new(format!("t_{page}_{i}"), description.clone(), schema.clone()))
            .collect();
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = Some((page + 1).to_string());
        Ok(result)
    }
}

/// The endless server; stopped on drop.
pub struct Endless {
    pub url: String,
    pages: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl Endless {
    /// The pages it has served so far.
    pub fn pages(&self) -> usize {
        self.pages.load(Ordering::Relaxed)
    }
}

impl Drop for Endless {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn endless_pages(per_page: usize) -> Endless {
    let pages = Arc::new(AtomicUsize::new(0));
    let handler = EndlessPages {
        per_page,
        pages: pages.clone(),
    };
    let stop = CancellationToken::new();
    let accepted = Arc::new(AtomicUsize::new(0));
    let url = super::upstream::serve(handler, 0, stop.clone(), accepted).await;
    Endless { url, pages, stop }
}

/// A proxy in front of an MCP server at `target` that passes everything
/// through, but answers a POST whose body holds `"garble":"<how>"` itself,
/// badly: `truncated` JSON, a `huge` body (20 MiB), JSON nested `deep`er
/// than any parser takes, or an answer to `another` id. Its URL.
pub async fn garbling_proxy(target: String) -> String {
    use axum::body::{Body, Bytes};
    use axum::http::{HeaderMap, Method, StatusCode};
    use axum::response::{IntoResponse, Response};

    super::install_crypto();
    let client = reqwest::Client::new();
    let forward = move |method: Method, headers: HeaderMap, body: Bytes| {
        let (client, target) = (client.clone(), target.clone());
        async move {
            let text = String::from_utf8_lossy(&body);
            let json =
                |body: String| ([("content-type", "application/json")], body).into_response();
            if text.contains(r#""garble":"truncated""#) {
                return json(r#"{"jsonrpc":"2.0","id":"#.to_owned());
            }
            if text.contains(r#""garble":"huge""#) {
                let huge = format!(
                    r#"{{"jsonrpc":"2.0","id":0,"result":{{"x":"{}"}}}}"#,
                    "x".repeat(20 << 20)
                );
                return json(huge);
            }
            if text.contains(r#""garble":"deep""#) {
                let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
                return json(format!(r#"{{"jsonrpc":"2.0","id":0,"result":{deep}}}"#));
            }
            if text.contains(r#""garble":"another""#) {
                return json(r#"{"jsonrpc":"2.0","id":987654,"result":{"content":[]}}"#.into());
            }
            let mut request = client.request(method, &target).body(body);
            for (name, value) in &headers {
                if name != "host" && name != "content-length" {
                    request = request.header(name, value);
                }
            }
            let Ok(answer) = request.send().await else {
                return StatusCode::BAD_GATEWAY.into_response();
            };
            let mut response = Response::builder().status(answer.status().as_u16());
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    response = response.header(name.as_str(), value.as_bytes());
                }
            }
            response
                .body(Body::from_stream(answer.bytes_stream()))
                .unwrap()
        }
    };
    let router = axum::Router::new().route("/mcp", axum::routing::any(forward));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/mcp")
}

/// A server that answers every request with `307 Temporary Redirect` to
/// `target` (the same path under it), counting the requests: where a
/// client follows it, a credential sent here would go on to `target`.
pub struct Redirector {
    pub url: String,
    hits: Arc<AtomicUsize>,
}

impl Redirector {
    pub async fn start(target: &str) -> Self {
        let target = target.trim_end_matches('/').to_string();
        let hits = Arc::<AtomicUsize>::default();
        let counted = hits.clone();
        let redirect = move |uri: axum::http::Uri| {
            counted.fetch_add(1, Ordering::SeqCst);
            let location = format!("{target}{}", uri.path());
            let location = axum::http::HeaderValue::from_str(&location).unwrap();
            async move {
                let mut answer = axum::http::StatusCode::TEMPORARY_REDIRECT.into_response();
                answer.headers_mut().insert("location", location);
                answer
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = axum::Router::new().fallback(redirect);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, hits }
    }

    /// Requests that reached this server.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
