//! The catalog file: what an operator writes (YAML or JSON, managed by GitOps).
//!
//! These are plain serde types. Every struct denies unknown fields so a typo
//! such as `timout:` is an error instead of a silently ignored setting, and
//! every map is a [`UniqueMap`] so a repeated name is an error too. Loading and
//! validation live in [`load`] and [`validate`]; the compiled, queryable form
//! is [`crate::catalog::Catalog`].

mod audit;
pub mod aws;
mod circuit;
pub mod expose;
pub mod files;
pub mod grants;
mod http;
mod limits;
mod load;
mod policy;
mod redis;
mod role;
mod routes;
mod unique_map;
mod validate;
pub mod vault;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use audit::{
    AdminConfig, AuditSettings, Durability, FailureMode, JsonlSinkConfig, PostgresSinkConfig,
    Retention, SinkConfig, SqliteSinkConfig, ToolAuditConfig,
};
pub use circuit::{CircuitConfig, ConcurrencyConfig};
pub use expose::ExposeConfig;
pub use http::{HttpSettings, parse_origin};
pub use limits::{LimitRule, LimitScope, Rate};
pub use load::{ConfigError, ConfigErrors, load_file, parse_str, read_file};
pub use policy::{PolicyConfig, RegoSettings};
pub use redis::{RedisConfig, RedisUrl};
pub use role::{Discovery, RoleConfig};
pub use routes::{
    FanOutMode, Idempotent, LegConfig, MAX_ATTEMPTS, MAX_LEGS, NamedLeg, RetryConfig, TargetConfig,
};
pub use unique_map::UniqueMap;

/// Default per-call timeout of an upstream server.
pub const DEFAULT_SERVER_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `servers.<name>.ping_interval`.
pub const MAX_PING_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Default limit on the size of a request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The whole catalog file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// The deployment's environment (for example `production`). Callers can
    /// never choose it; it is handed to policy and audit as a fact.
    pub environment: String,
    /// Logical server name -> how to reach that MCP server.
    #[serde(default)]
    pub servers: UniqueMap<ServerConfig>,
    /// Public tool name -> which server offers it, under which name.
    #[serde(default)]
    pub tools: UniqueMap<ToolConfig>,
    /// Public prompt name -> which server offers it, under which name.
    #[serde(default)]
    pub prompts: UniqueMap<PromptConfig>,
    /// Public resource-set name -> the server and URI prefix it covers.
    #[serde(default)]
    pub resources: UniqueMap<ResourceSetConfig>,
    /// Role -> what that role may use: a list of tool names, or a map of
    /// `tools`, `resources` and `prompts`.
    #[serde(default)]
    pub roles: UniqueMap<RoleConfig>,
    /// Endpoint -> the subset of the catalog it serves (`/mcp/<endpoint>`,
    /// `/endpoints/<endpoint>/tools`), granted as a role is; still
    /// filtered by each caller's role.
    #[serde(default)]
    pub endpoints: UniqueMap<RoleConfig>,
    /// Agent id -> its role and the SHA-256 of its service token.
    #[serde(default)]
    pub agents: UniqueMap<AgentConfig>,
    /// Settings of the HTTP front doors.
    #[serde(default)]
    pub http: HttpSettings,
    /// How the per-call credentials upstream servers get are signed.
    #[serde(default)]
    pub credentials: CredentialSettings,
    /// Identity providers whose JWTs agents may present, and how this
    /// control plane names itself to OAuth clients.
    #[serde(default)]
    pub identity: IdentitySettings,
    /// The Rego policy every call must pass after the role check, or
    /// `allow-all`. Absent: every call is denied.
    pub policy: Option<PolicyConfig>,
    /// Where audit records are stored.
    #[serde(default)]
    pub audit: AuditSettings,
    /// Admin id -> the SHA-256 of its token. Admins read the audit trail.
    #[serde(default)]
    pub admins: UniqueMap<AdminConfig>,
    /// Span export.
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    /// Token buckets on tool calls: scope (and name) -> rate (see
    /// [`LimitRule`]).
    #[serde(default)]
    pub limits: UniqueMap<String>,
    /// What the replicas share through Redis (their rate limits).
    pub redis: Option<RedisConfig>,
    /// HashiCorp Vault / OpenBao, for servers whose credential provider is
    /// `vault`.
    pub vault: Option<vault::VaultConfig>,
    /// How the lock file of pinned definitions beside the catalog
    /// (`<catalog>.pins.yaml`) is enforced, when there is one: `enforce`
    /// (default), `warn` or `off`.
    #[serde(default)]
    pub pinning: crate::guardrails::pins::PinningMode,
}

/// Where spans go.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// An OTLP/HTTP collector (`http://127.0.0.1:4318`): spans are exported
    /// there. Default: the `OTEL_EXPORTER_OTLP_ENDPOINT` environment
    /// variable, else no export.
    pub otlp_endpoint: Option<String>,
}

/// One upstream MCP server. Exactly one of `stdio`, `http` and `sse` is set.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Launch the server as a child process speaking MCP over stdin/stdout.
    pub stdio: Option<StdioConfig>,
    /// Reach the server over MCP Streamable HTTP.
    pub http: Option<HttpConfig>,
    /// Reach the server over the legacy HTTP+SSE transport of 2024-11-05
    /// (`url` is its event stream, typically `.../sse`), for servers that
    /// speak nothing newer.
    pub sse: Option<HttpConfig>,
    /// How long one call may take before the caller gets 504 (`30s`, `500ms`).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Forward the log messages this server sends during a call to the
    /// calling client. Off by default: server logs may say more than its tools.
    #[serde(default)]
    pub forward_logs: bool,
    /// What the control plane answers when the server asks for roots
    /// (`roots/list`) outside any call: no client's roots, only these.
    /// During a call the calling client answers. Default: none.
    #[serde(default)]
    pub roots: Vec<RootConfig>,
    /// What this server gets with each call instead of the agent's
    /// credential (default: a JWT minted by the control plane).
    #[serde(default)]
    pub credential: CredentialConfig,
    /// Which MCP revision to speak with this server: `auto` (default: probe
    /// `server/discover`, use 2026-07-28 when offered, else the `initialize`
    /// handshake with the newest revision the server accepts), or a pinned
    /// revision for servers that misbehave on probing.
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// Stop calling the server for a while after it failed repeatedly.
    pub circuit: Option<CircuitConfig>,
    /// How many calls the server gets at once, and how many may wait.
    #[serde(default)]
    pub concurrency: ConcurrencyConfig,
    /// How often a connected server is sent an MCP `ping`; one it does not
    /// answer within its `timeout` is reconnected. `0s` turns it off.
    #[serde(default = "default_ping_interval", with = "humantime_serde")]
    pub ping_interval: Duration,
    /// How often the server's lists (tools, prompts, resources) are
    /// fetched again whatever it announces, so a change it makes silently
    /// (a new tool, a pinned definition altered) is caught within one
    /// interval. `0s` lists again only when the server says its lists
    /// changed.
    #[serde(default = "default_refresh", with = "humantime_serde")]
    pub refresh: Duration,
    /// Publish the server's tools and prompts without listing each one:
    /// `{prefix: "gh_", include: ["issue_*"], exclude: ["*_delete"]}`.
    pub expose: Option<ExposeConfig>,
    /// Check each call's arguments against the tool's input schema before
    /// anything is sent (default). Off for a server whose schemas are
    /// known to be wrong.
    #[serde(default = "default_true")]
    pub validate_arguments: bool,
    /// The largest tool result (as JSON) taken from this server; a larger
    /// one fails the call with `result_too_large`. Default: no limit
    /// beyond the transport's.
    pub max_result_bytes: Option<usize>,
    /// Most tools taken from this server (the first by name); the rest are
    /// held back, and counted in readiness.
    #[serde(default = "default_max_tools")]
    pub max_tools: usize,
    /// `_meta` keys removed from the server's tool results (a key, or a
    /// prefix ending in `/`), besides the control plane's own namespace.
    #[serde(default)]
    pub drop_meta: Vec<String>,
}

fn default_max_tools() -> usize {
    1000
}

fn default_true() -> bool {
    true
}

/// The MCP revision the control plane speaks with one upstream server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum UpstreamProtocol {
    /// Probe `server/discover`; fall back to `initialize`.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// The stateless revision only (`server/discover`, per-request `_meta`).
    #[serde(rename = "2026-07-28")]
    V2026_07_28,
    /// The `initialize` handshake claiming this revision.
    #[serde(rename = "2025-11-25")]
    V2025_11_25,
    #[serde(rename = "2025-06-18")]
    V2025_06_18,
    #[serde(rename = "2025-03-26")]
    V2025_03_26,
    #[serde(rename = "2024-11-05")]
    V2024_11_05,
}

/// One root a server is told of outside a call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootConfig {
    /// A `file://` URI.
    pub uri: String,
    pub name: Option<String>,
}

fn default_ping_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_refresh() -> Duration {
    Duration::from_secs(300)
}

/// The shortest `servers.<name>.refresh` other than `0s`: a listing is
/// several requests, and a server is not to be polled hard.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);

fn default_timeout() -> Duration {
    DEFAULT_SERVER_TIMEOUT
}

/// A server launched as a child process.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StdioConfig {
    /// The program, looked up on `PATH`. The value `$SELF` names this
    /// control-plane executable (the shipped example uses it to run its
    /// built-in demo servers).
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables for the child. The child does not inherit
    /// the control plane's environment beyond `PATH`, `HOME` and locale.
    #[serde(default)]
    pub env: UniqueMap<String>,
    /// Working directory; relative paths are resolved against the catalog
    /// file's directory.
    pub cwd: Option<PathBuf>,
}

/// A server reached over Streamable HTTP.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The MCP endpoint, for example `https://marketdata.internal:8443/mcp`
    /// (for `sse`, the event stream, for example `http://legacy:8000/sse`).
    pub url: String,
    /// Static headers sent with every request to this server.
    #[serde(default)]
    pub headers: UniqueMap<String>,
}

/// One public tool.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ToolConfig {
    /// The logical name of the server that offers it. Exactly one of
    /// `server`, `targets` and `servers` is set.
    pub server: Option<String>,
    /// Weighted versions of the tool: each call goes to one of them.
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
    /// With `targets`: an agent keeps its target while the weights stand.
    #[serde(default)]
    pub sticky: bool,
    /// A fan-out: each call goes to all of these servers at once.
    #[serde(default)]
    pub servers: Vec<LegConfig>,
    /// With `servers`: whether one leg failing fails the call.
    #[serde(default)]
    pub mode: FanOutMode,
    /// The tool's name on its servers; defaults to the public name.
    pub upstream_name: Option<String>,
    /// Replaces the description the server declares.
    pub description: Option<String>,
    /// Replaces the title the server declares.
    pub title: Option<String>,
    /// The catalog's word on what the tool does (`readOnlyHint`, ...):
    /// each hint set replaces the server's, and only these reach policies.
    #[serde(default)]
    pub annotations: Annotations,
    /// Labels for policies (`input.tool.tags`), for example `[trading, write]`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Whether the audit trail keeps this tool's arguments (always their digest).
    #[serde(default)]
    pub audit: ToolAuditConfig,
    /// How long one call of this tool may take, in place of its server's
    /// `timeout` (longer or shorter).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Whether a failed call may be sent again: `true`, `false` (the
    /// default) or `hint` (when the server's `idempotentHint` says so).
    #[serde(default)]
    pub idempotent: Idempotent,
    /// How an idempotent tool's calls are tried again (defaults apply
    /// when it is idempotent and this is absent).
    pub retry: Option<RetryConfig>,
    /// The largest result (as JSON) of this tool, in place of its
    /// server's `max_result_bytes`.
    pub max_result_bytes: Option<usize>,
}

/// One public prompt.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PromptConfig {
    pub server: String,
    /// The prompt's name on that server; defaults to the public name.
    pub upstream_name: Option<String>,
    /// Replaces the description the server declares.
    pub description: Option<String>,
}

/// Hints about a tool's behaviour, as MCP names them. A server's own are
/// untrusted (the specification says so); the catalog's are the
/// operator's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Annotations {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

/// A named set of one server's resources: those whose URI starts with
/// `uri_prefix`. Reads are routed by the longest matching prefix.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceSetConfig {
    pub server: String,
    /// For example `research://notes/`.
    pub uri_prefix: String,
}

/// One agent identity.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub role: String,
    /// Lower-case hex SHA-256 of the agent's service token. The token itself
    /// is never stored.
    pub token_sha256: String,
    /// A revoked token is refused (401) while the entry stays for the record.
    #[serde(default)]
    pub revoked: bool,
    /// When the token stops being accepted (RFC 3339, `2027-01-31T00:00:00Z`).
    #[serde(default, with = "humantime_serde")]
    pub expires: Option<std::time::SystemTime>,
}

/// The longest lifetime a minted credential may be configured to have.
pub const MAX_TTL: Duration = Duration::from_secs(300);

/// How the control plane signs the per-call credentials it mints.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CredentialSettings {
    /// The `iss` of minted tokens; servers check it.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// The signing key: a PKCS#8 PEM or a private JWK. Generated (owner-only)
    /// when the file does not exist. Relative to the catalog's directory.
    #[serde(default = "default_key_file")]
    pub key_file: PathBuf,
    /// `EdDSA` (Ed25519) or `ES256`, for a generated key.
    #[serde(default = "default_key_algorithm")]
    pub algorithm: KeyAlgorithm,
    /// How long a minted token is valid (at most [`MAX_TTL`]).
    #[serde(default = "default_credential_ttl", with = "humantime_serde")]
    pub ttl: Duration,
}

fn default_issuer() -> String {
    "mcp-control-plane".into()
}

fn default_key_file() -> PathBuf {
    PathBuf::from(".mcp-control-plane/signing-key.pem")
}

/// The JWS algorithm of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum KeyAlgorithm {
    /// Ed25519 (`EdDSA`), the default: small and fast.
    EdDSA,
    /// ECDSA on P-256 with SHA-256, for verifiers without Ed25519.
    ES256,
}

impl KeyAlgorithm {
    pub fn jws_name(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
        }
    }
}

fn default_key_algorithm() -> KeyAlgorithm {
    KeyAlgorithm::EdDSA
}

fn default_credential_ttl() -> Duration {
    Duration::from_secs(60)
}

impl Default for CredentialSettings {
    fn default() -> Self {
        Self {
            issuer: default_issuer(),
            key_file: default_key_file(),
            algorithm: default_key_algorithm(),
            ttl: default_credential_ttl(),
        }
    }
}

/// A server's credential provider.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(tag = "provider", rename_all = "kebab-case")]
pub enum CredentialConfig {
    /// A JWT minted by the control plane for each call.
    #[default]
    Jwt,
    /// A fixed secret, sent as the bearer credential (or in `header`).
    Static(StaticCredential),
    /// An RFC 8693 token exchange of the minted JWT.
    OauthTokenExchange(TokenExchangeConfig),
    /// Temporary AWS credentials from STS `AssumeRole`, per agent and tool.
    AwsSts(aws::AwsStsConfig),
    /// A credential from HashiCorp Vault / OpenBao per call (top-level
    /// `vault:` says where Vault is).
    Vault(vault::VaultCredential),
    /// No credential.
    None,
}

/// A fixed secret for a server that cannot verify JWTs.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaticCredential {
    /// The secret's environment variable (exactly one of `env` and `file`).
    pub env: Option<String>,
    /// The secret's file, relative to the catalog's directory.
    pub file: Option<PathBuf>,
    /// Send the secret as the value of this header (an API key, for
    /// example `X-Api-Key`) instead of `Authorization: Bearer`.
    pub header: Option<String>,
}

impl StaticCredential {
    pub fn source(&self) -> SecretSource {
        SecretSource {
            env: self.env.clone(),
            file: self.file.clone(),
        }
    }
}

/// Where a secret comes from. Exactly one of `env` and `file` is set; the
/// secret itself never appears in the catalog.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// An environment variable of the control plane.
    pub env: Option<String>,
    /// A file (relative to the catalog's directory); surrounding whitespace
    /// is trimmed.
    pub file: Option<PathBuf>,
}

impl SecretSource {
    /// Read the secret. The error names where it looked, never the value.
    pub fn read(&self, base_dir: &Path) -> Result<String, String> {
        let secret = match (&self.env, &self.file) {
            (Some(name), None) => std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set"))?,
            (None, Some(file)) => std::fs::read_to_string(base_dir.join(file))
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?
                .trim()
                .to_string(),
            _ => return Err("set exactly one of `env` and `file`".into()),
        };
        if secret.is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(secret)
    }
}

/// An RFC 8693 token endpoint and this control plane's client there.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenExchangeConfig {
    pub token_endpoint: String,
    pub client_id: String,
    /// The client secret (HTTP Basic authentication at the endpoint).
    pub client_secret: SecretSource,
    /// The `audience` asked for; defaults to the server's logical name.
    pub audience: Option<String>,
}

/// Agents' identity beyond service tokens: OIDC/JWT issuers.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    /// This control plane's canonical resource identifier (the URL of its
    /// MCP endpoint, `https://mcp.example.com/mcp`): published in the OAuth
    /// protected-resource metadata, and the default audience of issuers.
    pub resource: Option<String>,
    /// Name -> an identity provider whose tokens are accepted.
    #[serde(default)]
    pub issuers: UniqueMap<IssuerConfig>,
}

/// One identity provider (an OIDC issuer).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` its tokens carry, exactly (`https://login.example.com/`).
    pub issuer: String,
    /// The `aud` a token must carry to be for this control plane (default:
    /// `identity.resource`). Tokens for any other audience are refused.
    pub audience: Option<String>,
    /// Where its keys are; default: the `jwks_uri` of
    /// `<issuer>/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    /// Signature algorithms accepted. Only asymmetric ones exist here: `none`
    /// and HMAC (`HS256`...) can never be configured.
    #[serde(default = "default_jwt_algorithms")]
    pub algorithms: Vec<JwtAlgorithm>,
    /// Tolerance for clock differences on `exp`, `nbf` and `iat` (at most `5m`).
    #[serde(default = "default_clock_skew", with = "humantime_serde")]
    pub clock_skew: Duration,
    /// The claim that names the agent.
    #[serde(default = "default_agent_claim")]
    pub agent_claim: String,
    /// Where the agent's role comes from.
    #[serde(default)]
    pub role: RoleClaim,
    /// Scopes advertised to OAuth clients in the resource metadata.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// The claim that gives an agent's role, and how its values map to roles.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleClaim {
    /// The claim: a string, or a list of strings (`groups`).
    #[serde(default = "default_role_claim")]
    pub claim: String,
    /// Claim value -> role. Empty: the value must itself be a role's name.
    /// Values that map to no role are ignored; values that map to two
    /// different roles make the token refused.
    #[serde(default)]
    pub map: UniqueMap<String>,
}

impl Default for RoleClaim {
    fn default() -> Self {
        Self {
            claim: default_role_claim(),
            map: UniqueMap::default(),
        }
    }
}

/// A JWS algorithm an issuer may sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

fn default_jwt_algorithms() -> Vec<JwtAlgorithm> {
    vec![
        JwtAlgorithm::RS256,
        JwtAlgorithm::ES256,
        JwtAlgorithm::EdDSA,
    ]
}

fn default_clock_skew() -> Duration {
    Duration::from_secs(60)
}

fn default_agent_claim() -> String {
    "sub".into()
}

fn default_role_claim() -> String {
    "role".into()
}
