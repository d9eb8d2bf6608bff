//! How a public tool routes: to one server (`server:`), to weighted
//! versions of it (`targets:`, for canaries), or to several servers at once
//! (`servers:`, a fan-out); and whether a failed call may be tried again
//! (`idempotent:` and `retry:`). See `router::split`, `router::fan_out` and
//! `router::retry` for what the settings do.

use std::time::Duration;

use serde::Deserialize;

/// One leg of a fan-out: a server's logical name, or the server with the
/// tool's name on it (`{server: b, upstream_name: positions}`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum LegConfig {
    Server(String),
    Named(NamedLeg),
}

/// A fan-out leg that names the tool on its server.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NamedLeg {
    pub server: String,
    /// The tool's name on that server; defaults to the tool's `upstream_name`.
    pub upstream_name: Option<String>,
}

impl LegConfig {
    pub fn server(&self) -> &str {
        match self {
            Self::Server(server) | Self::Named(NamedLeg { server, .. }) => server,
        }
    }

    pub fn upstream_name(&self) -> Option<&str> {
        match self {
            Self::Server(_) => None,
            Self::Named(leg) => leg.upstream_name.as_deref(),
        }
    }
}

/// One weighted target of a public name: `{server: marketdata_v2, weight: 10}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub server: String,
    /// The tool's name on that server; defaults to the tool's `upstream_name`.
    pub upstream_name: Option<String>,
    /// Its share of calls, relative to the other targets' (0 takes none).
    pub weight: u32,
}

/// What a fan-out answers when some of its legs fail.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FanOutMode {
    /// Any leg failing fails the call.
    #[default]
    All,
    /// What answered, with the legs that failed marked.
    Partial,
}

/// Whether calls of a tool may be sent again after a failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Idempotent {
    /// Never: the upstream may have acted.
    #[default]
    No,
    /// Yes: the operator vouches that a repeated call does no harm.
    Yes,
    /// When the server's own `idempotentHint` annotation says so.
    Hint,
}

impl<'de> Deserialize<'de> for Idempotent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Word(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Flag(true) => Ok(Self::Yes),
            Raw::Flag(false) => Ok(Self::No),
            Raw::Word(word) if word == "hint" => Ok(Self::Hint),
            Raw::Word(word) => Err(serde::de::Error::custom(format!(
                "`{word}`: expected true, false or hint"
            ))),
        }
    }
}

/// How an idempotent tool's failed calls are tried again: at most
/// `attempts` in all, waiting a jittered `backoff` that doubles each time
/// up to `max_backoff`, and never past the call's deadline.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included. Default 3.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// The wait before the second attempt. Default `50ms`.
    #[serde(default = "default_backoff", with = "humantime_serde")]
    pub backoff: Duration,
    /// The longest wait between two attempts. Default `1s`.
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            attempts: default_attempts(),
            backoff: default_backoff(),
            max_backoff: default_max_backoff(),
        }
    }
}

impl super::ToolConfig {
    /// Every server the tool routes to, with the tool's name there (when
    /// it differs from the tool's own `upstream_name`), in catalog order.
    pub fn legs(&self) -> Vec<(&str, Option<&str>)> {
        let named = self.server.iter().map(|server| (server.as_str(), None));
        let targets =
            (self.targets.iter()).map(|t| (t.server.as_str(), t.upstream_name.as_deref()));
        let fan_out = (self.servers.iter()).map(|leg| (leg.server(), leg.upstream_name()));
        named.chain(targets).chain(fan_out).collect()
    }
}

/// The most attempts a retry setting may allow.
pub const MAX_ATTEMPTS: u32 = 10;
/// The most weighted targets or fan-out legs of one tool.
pub const MAX_LEGS: usize = 16;

fn default_attempts() -> u32 {
    3
}

fn default_backoff() -> Duration {
    Duration::from_millis(50)
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotent_takes_a_flag_or_hint_and_nothing_else() {
        let parse = |text: &str| serde_json::from_str::<Idempotent>(text);
        assert_eq!(parse("true").unwrap(), Idempotent::Yes);
        assert_eq!(parse("false").unwrap(), Idempotent::No);
        assert_eq!(parse("\"hint\"").unwrap(), Idempotent::Hint);
        assert!(parse("\"yes\"").unwrap_err().to_string().contains("hint"));
    }

    #[test]
    fn a_leg_is_a_name_or_a_server_with_its_tool_name() {
        let legs: Vec<LegConfig> =
            serde_json::from_str(r#"["a", {"server": "b", "upstream_name": "x"}]"#).unwrap();
        assert_eq!((legs[0].server(), legs[0].upstream_name()), ("a", None));
        assert_eq!(
            (legs[1].server(), legs[1].upstream_name()),
            ("b", Some("x"))
        );
    }
}
