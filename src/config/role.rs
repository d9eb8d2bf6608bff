//! A role's grants. Written either as a plain list of tool names (the short
//! form) or as a map with `tools`, `resources`, `prompts` and `servers`.
//! Names may be globs; what they cover is in `grants`.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor, value};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleConfig {
    /// Public tool names.
    pub tools: Vec<String>,
    /// Public resource-set names.
    pub resources: Vec<String>,
    /// Public prompt names.
    pub prompts: Vec<String>,
    /// Servers whose every tool, prompt and resource set is granted.
    pub servers: Vec<String>,
    /// How `tools/list` shows what is granted.
    pub discovery: Discovery,
}

/// How an MCP client discovers its tools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Discovery {
    /// `tools/list` lists every tool.
    #[default]
    List,
    /// `tools/list` offers `search_tools` and `call_tool` instead.
    Search,
}

/// The long form, with serde's precise errors for unknown fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleMap {
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    prompts: Vec<String>,
    #[serde(default)]
    servers: Vec<String>,
    #[serde(default)]
    discovery: Discovery,
}

impl<'de> Deserialize<'de> for RoleConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RoleVisitor;

        impl<'de> Visitor<'de> for RoleVisitor {
            type Value = RoleConfig;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a list of tool names, or a map with `tools`, `resources`, `prompts`, `servers` and `discovery`",
                )
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RoleConfig, A::Error> {
                let tools = Vec::deserialize(value::SeqAccessDeserializer::new(seq))?;
                Ok(RoleConfig {
                    tools,
                    ..RoleConfig::default()
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RoleConfig, A::Error> {
                let RoleMap {
                    tools,
                    resources,
                    prompts,
                    servers,
                    discovery,
                } = RoleMap::deserialize(value::MapAccessDeserializer::new(map))?;
                Ok(RoleConfig {
                    tools,
                    resources,
                    prompts,
                    servers,
                    discovery,
                })
            }
        }

        deserializer.deserialize_any(RoleVisitor)
    }
}
