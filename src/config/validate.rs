//! Cross-checks a parsed catalog: names, references and values that serde
//! alone cannot judge. Every problem is collected, not just the first.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};

use super::MAX_TTL;
use super::grants;
use super::{
    CatalogFile, ConfigError, CredentialConfig, FanOutMode, HttpConfig, Idempotent, LimitRule,
    LimitScope, MAX_ATTEMPTS, MAX_LEGS, RedisConfig, RedisUrl, SecretSource, ServerConfig,
    SinkConfig, ToolConfig, UpstreamProtocol,
};

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

    fn check_server_ref(&mut self, catalog: &CatalogFile, path: &str, server: &str) {
        if !catalog.servers.contains_key(server) {
            self.error(path, format!("unknown server `{server}`"));
        }
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
    check_vault(&mut c, catalog);
    check_limits(&mut c, catalog);
    if let Some(redis) = &catalog.redis {
        check_redis(&mut c, redis);
    }
    for (name, tool) in catalog.tools.iter() {
        c.check_name("tools", name);
        if tool.timeout.is_some_and(|t| t.is_zero()) {
            c.error(format!("tools.{name}.timeout"), "must be longer than zero");
        }
        if tool.max_result_bytes == Some(0) {
            c.error(
                format!("tools.{name}.max_result_bytes"),
                "must be greater than zero",
            );
        }
        check_route(&mut c, catalog, name, tool);
    }
    for (name, prompt) in catalog.prompts.iter() {
        c.check_name("prompts", name);
        c.check_server_ref(catalog, &format!("prompts.{name}.server"), &prompt.server);
        if let Some(upstream) = &prompt.upstream_name
            && upstream.trim().is_empty()
        {
            c.error(format!("prompts.{name}.upstream_name"), "must not be empty");
        }
    }
    let mut prefixes: HashMap<&str, &str> = HashMap::new();
    for (name, set) in catalog.resources.iter() {
        c.check_name("resources", name);
        c.check_server_ref(catalog, &format!("resources.{name}.server"), &set.server);
        let path = format!("resources.{name}.uri_prefix");
        if set.uri_prefix.is_empty() {
            c.error(&path, "must not be empty");
        } else if crate::uri::reveals_address(&set.uri_prefix) {
            c.error(
                &path,
                "must not use a scheme that reveals an address (http, https, file, ...)",
            );
        } else if let Some(other) = prefixes.insert(&set.uri_prefix, name) {
            c.error(
                &path,
                format!("the same prefix is already used by resource set `{other}`"),
            );
        } else {
            // Requested URIs are normalized before they are matched: a prefix
            // not in normal form would never match (or match by accident).
            match crate::uri::normalize(&set.uri_prefix) {
                Ok(normal) if normal == set.uri_prefix => {}
                Ok(normal) => c.error(&path, format!("must be in normal form: `{normal}`")),
                Err(problem) => c.error(&path, problem.to_string()),
            }
        }
    }
    for (path, problem) in super::expose::collisions(catalog) {
        c.error(path, problem);
    }
    for (section, entries) in [("roles", &catalog.roles), ("endpoints", &catalog.endpoints)] {
        for (name, grants) in entries.iter() {
            c.check_name(section, name);
            for (path, problem) in grants::problems(catalog, &format!("{section}.{name}"), grants) {
                c.error(path, problem);
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
        if !is_sha256_hex(hash) {
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
    for (admin, config) in catalog.admins.iter() {
        c.check_name("admins", admin);
        let hash = config.token_sha256.as_str();
        if !is_sha256_hex(hash) {
            c.error(
                format!("admins.{admin}.token_sha256"),
                "must be 64 lower-case hex digits (the SHA-256 of the token, never the token itself)",
            );
        } else if let Some(agent) = token_owners.get(hash) {
            c.error(
                format!("admins.{admin}.token_sha256"),
                format!("the same token hash is already used by agent `{agent}`: admins need their own token"),
            );
        }
    }
    let http = &catalog.http;
    let counts = [
        ("http.max_body_bytes", http.max_body_bytes),
        ("http.max_connections", http.max_connections),
        ("http.admin_max_connections", http.admin_max_connections),
        (
            "http.max_connections_per_client",
            http.max_connections_per_client,
        ),
        (
            "http.max_streams_per_connection",
            http.max_streams_per_connection as usize,
        ),
        (
            "http.mcp_max_streams_per_agent",
            http.mcp_max_streams_per_agent,
        ),
        ("http.mcp_max_sessions", http.mcp_max_sessions),
        ("http.mcp_page_size", http.mcp_page_size),
        (
            "http.mcp_max_sessions_per_agent",
            http.mcp_max_sessions_per_agent,
        ),
    ];
    if http.mcp_page_size > super::http::MAX_MCP_PAGE_SIZE {
        let most = super::http::MAX_MCP_PAGE_SIZE;
        c.error("http.mcp_page_size", format!("must be at most {most}"));
    }
    for (path, count) in counts {
        if count == 0 {
            c.error(path, "must be greater than 0");
        }
    }
    if let Some(origin) = &http.admin_origin
        && crate::config::parse_origin(origin).is_none()
    {
        c.error(
            "http.admin_origin",
            "must be an origin: `http://` or `https://`, a host and an optional port, nothing after",
        );
    }
    let times = [
        ("http.header_timeout", http.header_timeout),
        ("http.body_timeout", http.body_timeout),
        ("http.idle_timeout", http.idle_timeout),
        ("http.mcp_session_idle", http.mcp_session_idle),
        ("audit.timeout", catalog.audit.timeout),
    ];
    for (path, time) in times {
        if time.is_zero() {
            c.error(
                path,
                "must be longer than 0s: an unbounded wait lets idle clients pile up",
            );
        }
    }
    let ttl = catalog.credentials.ttl;
    if ttl < Duration::from_secs(1) || ttl > MAX_TTL {
        c.error(
            "credentials.ttl",
            "must be between 1s and 5m: minted credentials are short-lived",
        );
    }
    if catalog.credentials.issuer.trim().is_empty() {
        c.error("credentials.issuer", "must not be empty");
    }
    check_identity(&mut c, catalog);
    check_audit(&mut c, catalog);
    c.errors
}

fn check_audit(c: &mut Collector<'_>, catalog: &CatalogFile) {
    let audit = &catalog.audit;
    if audit.sinks.is_empty() {
        c.error(
            "audit.sinks",
            "must name at least one sink: every request is recorded",
        );
    }
    for (i, sink) in audit.sinks.iter().enumerate() {
        let path = format!("audit.sinks[{i}]");
        match sink {
            SinkConfig::Postgres(postgres)
                if postgres.url.env.is_some() == postgres.url.file.is_some() =>
            {
                c.error(
                    format!("{path}.postgres.url"),
                    "set exactly one of `env` and `file`",
                );
            }
            SinkConfig::Kafka(kafka) if kafka.brokers.is_empty() || kafka.topic.is_empty() => {
                c.error(
                    format!("{path}.kafka"),
                    "needs at least one broker and a topic",
                );
            }
            SinkConfig::Jsonl(jsonl) if jsonl.max_bytes == 0 => {
                c.error(format!("{path}.jsonl.max_bytes"), "must be greater than 0");
            }
            _ => {}
        }
    }
}

fn check_identity(c: &mut Collector<'_>, catalog: &CatalogFile) {
    let identity = &catalog.identity;
    if let Some(resource) = &identity.resource
        && !is_http_url(resource)
    {
        c.error("identity.resource", "must be an http:// or https:// URL");
    }
    for (name, issuer) in identity.issuers.iter() {
        c.check_name("identity.issuers", name);
        let path = format!("identity.issuers.{name}");
        for (field, value) in [
            ("issuer", Some(&issuer.issuer)),
            ("jwks_url", issuer.jwks_url.as_ref()),
        ] {
            if let Some(value) = value
                && !is_trusted_url(value)
            {
                c.error(
                    format!("{path}.{field}"),
                    "must be an https:// URL (http:// only on loopback)",
                );
            }
        }
        if issuer.audience.is_none() && identity.resource.is_none() {
            c.error(
                format!("{path}.audience"),
                "set `audience` (or `identity.resource`): tokens for other audiences must be refused",
            );
        }
        if issuer.algorithms.is_empty() {
            c.error(
                format!("{path}.algorithms"),
                "must name at least one algorithm",
            );
        }
        if issuer.clock_skew > Duration::from_secs(300) {
            c.error(format!("{path}.clock_skew"), "must be at most 5m");
        }
        if issuer.agent_claim.trim().is_empty() {
            c.error(format!("{path}.agent_claim"), "must not be empty");
        }
        for (value, role) in issuer.role.map.iter() {
            if !catalog.roles.contains_key(role) {
                c.error(
                    format!("{path}.role.map.{value}"),
                    format!("unknown role `{role}`"),
                );
            }
        }
    }
}

/// An https URL, or an http URL to a loopback host: where keys and
/// identities may be fetched from.
pub(super) fn is_trusted_url(text: &str) -> bool {
    let Ok(url) = url::Url::parse(text) else {
        return false;
    };
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => true,
        ("http", Some(url::Host::Domain(host))) => host == "localhost",
        ("http", Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        _ => false,
    }
}

fn check_credential(c: &mut Collector<'_>, path: &str, credential: &CredentialConfig) {
    let check_source = |c: &mut Collector<'_>, path: String, source: &SecretSource| {
        if source.env.is_some() == source.file.is_some() {
            c.error(path, "set exactly one of `env` and `file`");
        }
    };
    match credential {
        CredentialConfig::Static(secret) => {
            check_source(c, format!("{path}.credential"), &secret.source());
            if let Some(header) = &secret.header
                && (HeaderName::try_from(header.as_str()).is_err()
                    || header.eq_ignore_ascii_case("authorization"))
            {
                c.error(
                    format!("{path}.credential.header"),
                    "must be a valid header name other than Authorization (the default)",
                );
            }
        }
        CredentialConfig::OauthTokenExchange(exchange) => {
            if !is_http_url(&exchange.token_endpoint) {
                c.error(
                    format!("{path}.credential.token_endpoint"),
                    "must be an http:// or https:// URL with a host",
                );
            }
            check_source(
                c,
                format!("{path}.credential.client_secret"),
                &exchange.client_secret,
            );
        }
        CredentialConfig::AwsSts(sts) => {
            for (field, problem) in sts.problems() {
                c.error(format!("{path}.credential{field}"), problem);
            }
        }
        CredentialConfig::Vault(vault) => {
            let path = format!("{path}.credential");
            if vault.role.is_some() && !vault.policies.is_empty() {
                c.error(
                    &path,
                    "set `policies` or `role`, not both (a token role sets its own policies)",
                );
            }
            if vault.role.is_none() && vault.policies.is_empty() {
                c.error(
                    &path,
                    "name the Vault `policies` the token carries, or a token `role`",
                );
            }
            if vault.ttl < Duration::from_secs(1) || vault.ttl > super::vault::MAX_TTL {
                c.error(format!("{path}.ttl"), "must be between 1s and 1h");
            }
            if let Some(header) = &vault.header
                && HeaderName::try_from(header.as_str()).is_err()
            {
                c.error(format!("{path}.header"), "must be a valid header name");
            }
        }
        CredentialConfig::Jwt | CredentialConfig::None => {}
    }
}

/// The top-level `vault:` settings, and that every server using Vault has them.
fn check_vault(c: &mut Collector<'_>, catalog: &CatalogFile) {
    if let Some(vault) = &catalog.vault {
        if !is_http_url(&vault.address) {
            c.error(
                "vault.address",
                "must be an http:// or https:// URL with a host",
            );
        }
        let source = vault.auth.source();
        if source.env.is_some() == source.file.is_some() {
            c.error(
                "vault.auth",
                "set exactly one of `token_env` and `token_file`",
            );
        }
    }
    for (name, server) in catalog.servers.iter() {
        if matches!(server.credential, CredentialConfig::Vault(_)) && catalog.vault.is_none() {
            c.error(
                format!("servers.{name}.credential"),
                "the `vault` provider needs the top-level `vault:` settings (address, auth)",
            );
        }
    }
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

fn check_server(c: &mut Collector<'_>, name: &str, server: &ServerConfig) {
    let path = format!("servers.{name}");
    for (field, problem) in server.circuit.iter().flat_map(|c| c.problems()) {
        c.error(format!("{path}.circuit.{field}"), problem);
    }
    if server.ping_interval > super::MAX_PING_INTERVAL {
        c.error(format!("{path}.ping_interval"), "must be at most 24h");
    }
    for (i, root) in server.roots.iter().enumerate() {
        if !root.uri.starts_with("file://") {
            c.error(format!("{path}.roots[{i}].uri"), "must be a file:// URI");
        }
    }
    if !server.refresh.is_zero() && server.refresh < super::MIN_REFRESH {
        c.error(
            format!("{path}.refresh"),
            "must be 0s (never) or at least 1s",
        );
    }
    for (field, problem) in server.concurrency.problems() {
        c.error(format!("{path}.concurrency.{field}"), problem);
    }
    let transports = [
        server.stdio.is_some(),
        server.http.is_some(),
        server.sse.is_some(),
    ];
    match transports.iter().filter(|set| **set).count() {
        0 => c.error(&path, "missing transport: set `stdio`, `http` or `sse`"),
        1 => {}
        _ => c.error(&path, "set exactly one of `stdio`, `http` and `sse`"),
    }
    if let Some(stdio) = &server.stdio
        && stdio.command.trim().is_empty()
    {
        c.error(format!("{path}.stdio.command"), "must not be empty");
    }
    if let Some(http) = &server.http {
        check_http(c, &format!("{path}.http"), http);
    }
    if let Some(sse) = &server.sse {
        check_http(c, &format!("{path}.sse"), sse);
        if server.protocol == UpstreamProtocol::V2026_07_28 {
            c.error(
                format!("{path}.protocol"),
                "2026-07-28 is not spoken over the legacy SSE transport; use `http`, or `auto` or an earlier revision",
            );
        }
    }
    if server.timeout.is_zero() {
        c.error(format!("{path}.timeout"), "must be greater than zero");
    }
    check_credential(c, &path, &server.credential);
    if let CredentialConfig::AwsSts(sts) = &server.credential {
        let delivered = sts.sign.is_some() || sts.deliver.is_some();
        if server.http.is_some() && !delivered {
            c.error(
                format!("{path}.credential"),
                "an HTTP server needs `sign: sigv4` or `deliver: headers` to receive AWS credentials",
            );
        }
        if server.stdio.is_some() && delivered {
            c.error(
                format!("{path}.credential"),
                "a stdio server receives AWS credentials in `_meta`; `sign` and `deliver` are for HTTP servers",
            );
        }
        if server.sse.is_some() {
            c.error(
                format!("{path}.credential"),
                "aws-sts is not supported on the legacy SSE transport; use `http`",
            );
        }
    }
    if server.max_result_bytes == Some(0) {
        c.error(
            format!("{path}.max_result_bytes"),
            "must be greater than zero",
        );
    }
    for (field, problem) in server.expose.iter().flat_map(|e| e.problems()) {
        c.error(format!("{path}.expose.{field}"), problem);
    }
}

/// The URL and static headers of an HTTP transport at `path`.
fn check_http(c: &mut Collector<'_>, path: &str, http: &HttpConfig) {
    match url::Url::parse(&http.url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
        Ok(_) => c.error(
            format!("{path}.url"),
            "must be an http:// or https:// URL with a host",
        ),
        Err(e) => c.error(format!("{path}.url"), format!("not a valid URL: {e}")),
    }
    for (header, value) in http.headers.iter() {
        if header.eq_ignore_ascii_case("authorization") {
            c.error(
                format!("{path}.headers.{header}"),
                "the Authorization header carries the server's credential; set `credential` instead",
            );
        }
        if HeaderName::try_from(header.as_str()).is_err() {
            c.error(
                format!("{path}.headers.{header}"),
                "not a valid header name",
            );
        }
        if HeaderValue::try_from(value.as_str()).is_err() {
            c.error(
                format!("{path}.headers.{header}"),
                "not a valid header value",
            );
        }
    }
}

/// 64 lower-case hex digits.
fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Where a tool goes: exactly one of `server`, `targets` and `servers`,
/// each naming known servers and valid tool names; and whether it may be
/// retried.
fn check_route(c: &mut Collector<'_>, catalog: &CatalogFile, name: &str, tool: &ToolConfig) {
    let at = |field: &str| format!("tools.{name}.{field}");
    let forms = [
        tool.server.is_some(),
        !tool.targets.is_empty(),
        !tool.servers.is_empty(),
    ];
    if forms.iter().filter(|set| **set).count() != 1 {
        c.error(
            format!("tools.{name}"),
            "set exactly one of `server` (one server), `targets` (weighted versions) and `servers` (a fan-out)",
        );
    }
    let mut names = HashSet::new();
    for (i, (server, upstream)) in tool.legs().into_iter().enumerate() {
        let path = match (&tool.server, tool.targets.is_empty()) {
            (Some(_), _) => at("server"),
            (None, false) => at(&format!("targets[{i}].server")),
            (None, true) => at(&format!("servers[{i}]")),
        };
        c.check_server_ref(catalog, &path, server);
        if let Some(upstream) = upstream.or(tool.upstream_name.as_deref())
            && !is_valid_name(upstream)
        {
            c.error(at("upstream_name"), format!("`{upstream}` {NAME_RULE}"));
        }
        let fan_out = !tool.servers.is_empty();
        // A fan-out's result is keyed by server; a split may route to two
        // tools of one server, never twice to the same one.
        let key = (server, upstream.filter(|_| !fan_out));
        if !names.insert(key) {
            c.error(path, format!("`{server}` is named twice"));
        }
    }
    if tool.targets.len().max(tool.servers.len()) > MAX_LEGS {
        c.error(
            format!("tools.{name}"),
            format!("at most {MAX_LEGS} targets or servers"),
        );
    }
    if !tool.targets.is_empty() && tool.targets.iter().all(|t| t.weight == 0) {
        c.error(at("targets"), "at least one target needs a weight above 0");
    }
    if let Some(heavy) = tool.targets.iter().position(|t| t.weight > MAX_WEIGHT) {
        c.error(
            at(&format!("targets[{heavy}].weight")),
            format!("must be at most {MAX_WEIGHT}"),
        );
    }
    if tool.sticky && tool.targets.is_empty() {
        c.error(at("sticky"), "applies only with `targets`");
    }
    if tool.mode != FanOutMode::All && tool.servers.is_empty() {
        c.error(at("mode"), "applies only with `servers` (a fan-out)");
    }
    if tool.servers.len() == 1 {
        c.error(
            at("servers"),
            "a fan-out needs two servers or more; use `server` for one",
        );
    }
    match (tool.idempotent, tool.retry) {
        (Idempotent::No, Some(_)) => c.error(
            at("retry"),
            "applies only to a tool marked `idempotent: true` or `idempotent: hint`",
        ),
        (_, Some(retry)) => {
            if !(1..=MAX_ATTEMPTS).contains(&retry.attempts) {
                c.error(at("retry.attempts"), format!("must be 1 to {MAX_ATTEMPTS}"));
            }
            if retry.backoff.is_zero() || retry.backoff > retry.max_backoff {
                c.error(
                    at("retry.backoff"),
                    "must be longer than zero and at most `max_backoff`",
                );
            }
        }
        _ => {}
    }
}

/// A Redis URL names its scheme; the wait for Redis is short, since every
/// rate-limited call waits for it.
fn check_redis(c: &mut Collector<'_>, redis: &RedisConfig) {
    if let RedisUrl::Plain(url) = &redis.url
        && !(url.starts_with("redis://") || url.starts_with("rediss://"))
    {
        c.error(
            "redis.url",
            "must start with `redis://` or `rediss://` (TLS)",
        );
    }
    if redis.timeout.is_zero() || redis.timeout > Duration::from_secs(5) {
        c.error("redis.timeout", "must be longer than zero and at most 5s");
    }
}

/// The largest weight of one target.
const MAX_WEIGHT: u32 = 1_000_000;

/// Each `limits:` entry parses, and the agent, role or tool it names exists.
fn check_limits(c: &mut Collector<'_>, catalog: &CatalogFile) {
    for (key, value) in catalog.limits.iter() {
        let path = format!("limits.{key}");
        let rule = match LimitRule::parse(key, value) {
            Ok(rule) => rule,
            Err(problem) => {
                c.error(path, problem);
                continue;
            }
        };
        let (section, name, known) = match &rule.scope {
            LimitScope::Agent(Some(name)) => ("agent", name, catalog.agents.get(name).is_some()),
            LimitScope::Role(Some(name)) => ("role", name, catalog.roles.get(name).is_some()),
            LimitScope::Tool {
                name: Some(name), ..
            } => ("tool", name, catalog.tools.get(name).is_some()),
            _ => continue,
        };
        if !known {
            c.error(path, format!("unknown {section} `{name}`"));
        }
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
