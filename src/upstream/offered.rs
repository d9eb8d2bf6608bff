//! What a server offers: its tools, prompts, resources and resource
//! templates, listed after the handshake (following pagination) and kept
//! with the connection. Normalised once here, so every response built from
//! them is free of upstream addresses.

use std::collections::HashMap;

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};
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

/// List everything the server's capabilities say it has.
pub async fn list(peer: &Peer<RoleClient>) -> Result<Offered, ServiceError> {
    let capabilities = peer.peer_info().map(|info| info.capabilities.clone());
    let mut offered = Offered::default();
    // Tools are the one thing a server without declared capabilities is
    // still asked for.
    if capabilities.as_ref().is_none_or(|c| c.tools.is_some()) {
        offered.tools = peer
            .list_all_tools()
            .await?
            .into_iter()
            .map(|mut tool| {
                tool.icons = None;
                tool.meta = None;
                (tool.name.to_string(), tool)
            })
            .collect();
    }
    if capabilities.as_ref().is_some_and(|c| c.prompts.is_some()) {
        offered.prompts = peer
            .list_all_prompts()
            .await?
            .into_iter()
            .map(|mut prompt| {
                prompt.icons = None;
                prompt.meta = None;
                (prompt.name.clone(), prompt)
            })
            .collect();
    }
    if capabilities.as_ref().is_some_and(|c| c.resources.is_some()) {
        offered.resources = peer.list_all_resources().await?;
        offered.templates = peer.list_all_resource_templates().await?;
        for resource in &mut offered.resources {
            resource.icons = None;
            resource.meta = None;
        }
        for template in &mut offered.templates {
            template.icons = None;
            template.meta = None;
        }
    }
    Ok(offered.compiled())
}
