//! A hostile upstream: its `tools/list` never ends (every page has a
//! `nextCursor`), each page holding `per_page` tools of about 4 KB.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
