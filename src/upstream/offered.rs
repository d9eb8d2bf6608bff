//! What a server offers: its tools, prompts, resources and resource
//! templates, listed after the handshake (following pagination) and kept
//! with the connection. Normalised once here, so every response built from
//! them is free of upstream addresses.

use std::collections::HashMap;

use futures::FutureExt;

use rmcp::model::{PaginatedRequestParams, Prompt, Resource, ResourceTemplate, Tool};
use rmcp::service::{Peer, RoleClient, ServiceError};

use crate::guardrails::arguments::Schemas;
use crate::guardrails::pins;

/// A server's declarations, by their upstream names.
#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Offered {
    pub tools: HashMap<String, Tool>,
    pub prompts: HashMap<String, Prompt>,
    pub resources: Vec<Resource>,
    pub templates: Vec<ResourceTemplate>,
    /// The tools' input schemas, compiled ([`Offered::compiled`]).
    #[serde(skip)]
    pub schemas: Schemas,
    /// The SHA-256 of each definition as pinned, by upstream name.
    #[serde(skip)]
    pub digests: Digests,
    /// Tools the server offers beyond its `max_tools`: not served.
    #[serde(default)]
    pub tools_held_back: usize,
    /// How long the server said its lists stay fresh (the least `ttlMs`
    /// of them, 2026-07-28): they are listed again then.
    #[serde(skip)]
    pub fresh_for: Option<std::time::Duration>,
}

/// The pinned digest of each tool and prompt a server offers
/// ([`crate::guardrails::pins`]), computed once per set of definitions.
#[derive(Debug, Clone, Default)]
pub struct Digests {
    pub tools: HashMap<String, String>,
    pub prompts: HashMap<String, String>,
}

impl PartialEq for Digests {
    /// Digests follow from the definitions they were computed from.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Offered {
    /// These definitions with their tools' input schemas compiled, as
    /// every published set has them.
    pub fn compiled(mut self) -> Self {
        self.schemas = Schemas::compile(&self.tools);
        self.digests = Digests {
            tools: (self.tools.iter())
                .map(|(name, tool)| (name.clone(), pins::digest(&pins::tool_definition(tool))))
                .collect(),
            prompts: (self.prompts.iter())
                .map(|(name, p)| (name.clone(), pins::digest(&pins::prompt_definition(p))))
                .collect(),
        };
        self
    }
}

/// What one listing may bring, whatever the server says: a server whose
/// `nextCursor` never ends, or whose pages are huge, is refused for that
/// listing (logged, and shown in readiness), never accumulated.
const MAX_PAGES: usize = 100;
/// Most items one list (tools, prompts, resources, templates) may hold.
const MAX_ITEMS: usize = 10_000;
/// Largest one definition may be, as JSON.
const MAX_DEFINITION_BYTES: usize = 256 * 1024;
/// Largest one list may be in all, as JSON.
const MAX_LIST_BYTES: usize = 32 * 1024 * 1024;

/// Why a listing failed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("{0}")]
    Service(#[from] ServiceError),
    /// The server offers more than a listing may bring.
    #[error("the server's {0}")]
    TooLarge(String),
}

/// List everything the server's capabilities say it has; of its tools,
/// at most `max_tools` (the first by name: the rest are held back and
/// counted).
pub async fn list(peer: &Peer<RoleClient>, max_tools: usize) -> Result<Offered, ListError> {
    let capabilities = peer.peer_info().map(|info| info.capabilities.clone());
    let mut offered = Offered::default();
    let page = |cursor| Some(PaginatedRequestParams::default().with_cursor(cursor));
    // The least `ttlMs` any page of any list gave. `0` ("do not cache",
    // what rmcp servers say by default) is no hint to list again at once:
    // `refresh` decides then.
    let mut ttl: Option<u64> = None;
    let mut fresh = |ttl_ms: Option<u64>| {
        ttl = ttl.into_iter().chain(ttl_ms.filter(|&ms| ms > 0)).min();
    };
    // Tools are the one thing a server without declared capabilities is
    // still asked for.
    if capabilities.as_ref().is_none_or(|c| c.tools.is_some()) {
        let mut tools = bounded("tools", &mut fresh, |cursor| {
            let listed = peer.list_tools(page(cursor));
            listed.map(|listed| listed.map(|l| (l.tools, l.next_cursor, l.ttl_ms)))
        })
        .await?;
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        offered.tools_held_back = tools.len().saturating_sub(max_tools);
        offered.tools = (tools.into_iter().take(max_tools))
            .map(|mut tool| {
                tool.icons = None;
                tool.meta = None;
                (tool.name.to_string(), tool)
            })
            .collect();
    }
    if capabilities.as_ref().is_some_and(|c| c.prompts.is_some()) {
        let prompts = bounded("prompts", &mut fresh, |cursor| {
            let listed = peer.list_prompts(page(cursor));
            listed.map(|listed| listed.map(|l| (l.prompts, l.next_cursor, l.ttl_ms)))
        })
        .await?;
        offered.prompts = (prompts.into_iter())
            .map(|mut prompt| {
                prompt.icons = None;
                prompt.meta = None;
                (prompt.name.clone(), prompt)
            })
            .collect();
    }
    if capabilities.as_ref().is_some_and(|c| c.resources.is_some()) {
        offered.resources = bounded("resources", &mut fresh, |cursor| {
            let listed = peer.list_resources(page(cursor));
            listed.map(|listed| listed.map(|l| (l.resources, l.next_cursor, l.ttl_ms)))
        })
        .await?;
        offered.templates = bounded("resource templates", &mut fresh, |cursor| {
            let listed = peer.list_resource_templates(page(cursor));
            listed.map(|listed| listed.map(|l| (l.resource_templates, l.next_cursor, l.ttl_ms)))
        })
        .await?;
        for resource in &mut offered.resources {
            resource.icons = None;
            resource.meta = None;
        }
        for template in &mut offered.templates {
            template.icons = None;
            template.meta = None;
        }
    }
    offered.fresh_for = ttl.map(std::time::Duration::from_millis);
    Ok(offered.compiled())
}

/// Every page of one list, within [`MAX_PAGES`], [`MAX_ITEMS`],
/// [`MAX_DEFINITION_BYTES`] and [`MAX_LIST_BYTES`]; each page's `ttlMs`
/// goes to `fresh`.
async fn bounded<T, F>(
    what: &str,
    fresh: &mut impl FnMut(Option<u64>),
    mut list_page: impl FnMut(Option<String>) -> F,
) -> Result<Vec<T>, ListError>
where
    T: serde::Serialize,
    F: std::future::Future<Output = Result<(Vec<T>, Option<String>, Option<u64>), ServiceError>>,
{
    let too_large = |problem: String| Err(ListError::TooLarge(format!("{what} {problem}")));
    let mut items = Vec::new();
    let mut bytes = 0;
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let (page, next, ttl_ms) = list_page(cursor.take()).await?;
        fresh(ttl_ms);
        for item in page {
            let size = json_size(&item);
            if size > MAX_DEFINITION_BYTES {
                return too_large(format!(
                    "include a definition of {size} bytes (at most {MAX_DEFINITION_BYTES})"
                ));
            }
            bytes += size;
            if bytes > MAX_LIST_BYTES {
                return too_large(format!("exceed {MAX_LIST_BYTES} bytes"));
            }
            if items.len() == MAX_ITEMS {
                return too_large(format!("exceed {MAX_ITEMS} items"));
            }
            items.push(item);
        }
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(items),
        }
    }
    too_large(format!("take more than {MAX_PAGES} pages"))
}

/// The length of `item` as JSON, without keeping the text.
fn json_size(item: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, item) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}
