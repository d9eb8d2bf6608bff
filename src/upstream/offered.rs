//! What a server offers: its tools, prompts, resources and resource
//! templates, listed after the handshake (following pagination) and kept
//! with the connection. Normalised once here, so every response built from
//! them is free of upstream addresses.

use std::collections::HashMap;

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};
use rmcp::service::{Peer, RoleClient, ServiceError};

use crate::guardrails::arguments::Schemas;

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
}

impl Offered {
    /// These definitions with their tools' input schemas compiled, as
    /// every published set has them.
    pub fn compiled(mut self) -> Self {
        self.schemas = Schemas::compile(&self.tools);
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
