//! The `policy` section: Rego files and data, or the explicit `allow-all`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor, value};

/// How calls are decided after the role check. Without a `policy` section
/// every call is denied.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyConfig {
    /// `policy: allow-all`: the role check alone decides (development only;
    /// `check` warns about it).
    AllowAll,
    Rego(RegoSettings),
}

/// Rego policies and the data they read.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegoSettings {
    /// `.rego` files, or directories whose `.rego` files (recursively) are
    /// loaded; relative to the catalog's directory. `test_*` rules in them
    /// are the policy's tests.
    pub files: Vec<PathBuf>,
    /// JSON or YAML files whose objects are merged into `data`.
    #[serde(default)]
    pub data: Vec<PathBuf>,
    /// The rule that decides a call: `true` allows, anything else denies.
    #[serde(default = "default_query")]
    pub query: String,
    /// A set of strings explaining a denial, shown to the caller.
    #[serde(default = "default_reasons")]
    pub reasons: String,
    /// If the policy declares it: whether a tool is listed at all, and a
    /// precondition of every call.
    #[serde(default = "default_visible")]
    pub visible: String,
    /// The package whose `deny` and `redact` rules, if the policy declares
    /// them, judge each tool result before it leaves.
    #[serde(default = "default_result")]
    pub result: String,
    /// Longest one evaluation may take; beyond it the call is denied.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl RegoSettings {
    /// `files` and `data` with every other setting at its default.
    pub fn new(files: Vec<PathBuf>, data: Vec<PathBuf>) -> Self {
        Self {
            files,
            data,
            query: default_query(),
            reasons: default_reasons(),
            visible: default_visible(),
            result: default_result(),
            timeout: default_timeout(),
        }
    }
}

fn default_query() -> String {
    "data.mcp.authz.allow".into()
}

fn default_reasons() -> String {
    "data.mcp.authz.reasons".into()
}

fn default_visible() -> String {
    "data.mcp.authz.visible".into()
}

fn default_result() -> String {
    "data.mcp.result".into()
}

fn default_timeout() -> Duration {
    Duration::from_millis(100)
}

impl<'de> Deserialize<'de> for PolicyConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PolicyVisitor;

        impl<'de> Visitor<'de> for PolicyVisitor {
            type Value = PolicyConfig;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`allow-all`, or a map with `files` (and `data`, `query`, `reasons`, `visible`, `timeout`)")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<PolicyConfig, E> {
                match text {
                    "allow-all" => Ok(PolicyConfig::AllowAll),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PolicyConfig, A::Error> {
                RegoSettings::deserialize(value::MapAccessDeserializer::new(map))
                    .map(PolicyConfig::Rego)
            }
        }

        deserializer.deserialize_any(PolicyVisitor)
    }
}
