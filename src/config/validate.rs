//! Cross-checks a parsed catalog: names, references and values that serde
//! alone cannot judge. Every problem is collected, not just the first.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use axum::http::{HeaderName, HeaderValue};

use super::{CatalogFile, ConfigError, ServerConfig};

/// Whether `name` is a valid public tool, server, role or agent name:
/// `^[A-Za-z0-9_.-]{1,128}$`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

const NAME_RULE: &str = "must match ^[A-Za-z0-9_.-]{1,128}$";

struct Collector<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
}

impl Collector<'_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            location: None,
            path: path.into(),
            message: message.into(),
        });
    }

    fn check_name(&mut self, section: &str, name: &str) {
        if !is_valid_name(name) {
            self.error(
                format!("{section}.{name}"),
                format!("name `{name}` {NAME_RULE}"),
            );
        }
    }
}

/// Every problem in `catalog`; empty when it is valid.
pub fn validate(catalog: &CatalogFile, file: &Path) -> Vec<ConfigError> {
    let mut c = Collector {
        file,
        errors: Vec::new(),
    };
    if catalog.environment.trim().is_empty() {
        c.error("environment", "must not be empty");
    }
    for (name, server) in catalog.servers.iter() {
        c.check_name("servers", name);
        check_server(&mut c, name, server);
    }
    for (name, tool) in catalog.tools.iter() {
        c.check_name("tools", name);
        if !catalog.servers.contains_key(&tool.server) {
            c.error(
                format!("tools.{name}.server"),
                format!("unknown server `{}`", tool.server),
            );
        }
        if let Some(upstream) = &tool.upstream_name
            && !is_valid_name(upstream)
        {
            c.error(
                format!("tools.{name}.upstream_name"),
                format!("`{upstream}` {NAME_RULE}"),
            );
        }
    }
    for (role, tools) in catalog.roles.iter() {
        c.check_name("roles", role);
        let mut seen = HashSet::new();
        for (i, tool) in tools.iter().enumerate() {
            if !catalog.tools.contains_key(tool) {
                c.error(
                    format!("roles.{role}[{i}]"),
                    format!("unknown tool `{tool}`"),
                );
            } else if !seen.insert(tool) {
                c.error(
                    format!("roles.{role}[{i}]"),
                    format!("tool `{tool}` is listed twice"),
                );
            }
        }
    }
    let mut token_owners: HashMap<&str, &str> = HashMap::new();
    for (agent, config) in catalog.agents.iter() {
        c.check_name("agents", agent);
        if !catalog.roles.contains_key(&config.role) {
            c.error(
                format!("agents.{agent}.role"),
                format!("unknown role `{}`", config.role),
            );
        }
        let hash = config.token_sha256.as_str();
        if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            c.error(
                format!("agents.{agent}.token_sha256"),
                "must be 64 lower-case hex digits (the SHA-256 of the token, never the token itself)",
            );
        } else if let Some(other) = token_owners.insert(hash, agent) {
            c.error(
                format!("agents.{agent}.token_sha256"),
                format!("the same token hash is already used by agent `{other}`"),
            );
        }
    }
    if catalog.http.max_body_bytes == 0 {
        c.error("http.max_body_bytes", "must be greater than 0");
    }
    c.errors
}

fn check_server(c: &mut Collector<'_>, name: &str, server: &ServerConfig) {
    let path = format!("servers.{name}");
    match (&server.stdio, &server.http) {
        (Some(_), Some(_)) => c.error(&path, "set exactly one of `stdio` and `http`, not both"),
        (None, None) => c.error(&path, "missing transport: set `stdio` or `http`"),
        (Some(stdio), None) => {
            if stdio.command.trim().is_empty() {
                c.error(format!("{path}.stdio.command"), "must not be empty");
            }
        }
        (None, Some(http)) => {
            match url::Url::parse(&http.url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                Ok(_) => c.error(
                    format!("{path}.http.url"),
                    "must be an http:// or https:// URL with a host",
                ),
                Err(e) => c.error(format!("{path}.http.url"), format!("not a valid URL: {e}")),
            }
            for (header, value) in http.headers.iter() {
                if HeaderName::try_from(header.as_str()).is_err() {
                    c.error(
                        format!("{path}.http.headers.{header}"),
                        "not a valid header name",
                    );
                }
                if HeaderValue::try_from(value.as_str()).is_err() {
                    c.error(
                        format!("{path}.http.headers.{header}"),
                        "not a valid header value",
                    );
                }
            }
        }
    }
    if server.timeout.is_zero() {
        c.error(format!("{path}.timeout"), "must be greater than zero");
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_name;

    #[test]
    fn names_follow_the_documented_pattern() {
        assert!(is_valid_name("read_positions"));
        assert!(is_valid_name("v2.run-report"));
        assert!(is_valid_name(&"a".repeat(128)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"a".repeat(129)));
        assert!(!is_valid_name("read positions"));
        assert!(!is_valid_name("read/positions"));
        assert!(!is_valid_name("ré"));
    }
}
