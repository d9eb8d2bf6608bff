//! The compiled catalog: an immutable snapshot of the world, built once from a
//! validated [`CatalogFile`] and shared read-only by every request.
//!
//! Lookups the hot path needs (tool by public name, a role's view) are
//! precomputed here so a request never walks the raw configuration.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{CatalogFile, HttpSettings};

/// Index of a server in [`Catalog::servers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerId(pub usize);

/// How to reach one upstream MCP server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub name: Arc<str>,
    pub transport: TransportSpec,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum TransportSpec {
    Stdio {
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
        cwd: PathBuf,
    },
    Http {
        url: String,
        headers: Vec<(String, String)>,
    },
}

/// Where a public tool name leads.
#[derive(Debug, Clone)]
pub struct ToolRoute {
    pub public_name: Arc<str>,
    pub server: ServerId,
    pub upstream_name: Arc<str>,
    /// Operator's description, replacing the upstream's when set.
    pub description: Option<Arc<str>>,
}

/// What one role may use, sorted by public name.
#[derive(Debug, Clone, Default)]
pub struct RoleView {
    tools: Vec<Arc<str>>,
    allowed: HashSet<Arc<str>>,
}

impl RoleView {
    pub fn tools(&self) -> &[Arc<str>] {
        &self.tools
    }

    pub fn allows(&self, tool: &str) -> bool {
        self.allowed.contains(tool)
    }
}

/// An agent that may authenticate with a service token.
#[derive(Debug, Clone)]
pub struct AgentEntry {
    pub id: Arc<str>,
    pub role: Arc<str>,
    pub token_sha256: [u8; 32],
}

/// The immutable snapshot.
#[derive(Debug)]
pub struct Catalog {
    pub environment: Arc<str>,
    /// The `http` section, as configured.
    pub http: HttpSettings,
    servers: Vec<ServerSpec>,
    tools: HashMap<Arc<str>, ToolRoute>,
    roles: HashMap<Arc<str>, RoleView>,
    agents: Vec<AgentEntry>,
}

impl Catalog {
    /// Compile a validated catalog file. `base_dir` is the directory of the
    /// catalog file: relative working directories are resolved against it.
    pub fn compile(file: &CatalogFile, base_dir: &Path) -> Self {
        let mut server_ids = HashMap::new();
        let servers = file
            .servers
            .iter()
            .enumerate()
            .map(|(i, (name, config))| {
                server_ids.insert(name.as_str(), ServerId(i));
                let transport = match (&config.stdio, &config.http) {
                    (Some(stdio), _) => TransportSpec::Stdio {
                        command: stdio.command.clone(),
                        args: stdio.args.clone(),
                        env: pairs(stdio.env.iter()),
                        cwd: base_dir.join(stdio.cwd.as_deref().unwrap_or(Path::new("."))),
                    },
                    (None, Some(http)) => TransportSpec::Http {
                        url: http.url.clone(),
                        headers: pairs(http.headers.iter()),
                    },
                    (None, None) => unreachable!("validation requires one transport"),
                };
                ServerSpec {
                    name: name.as_str().into(),
                    transport,
                    timeout: config.timeout,
                }
            })
            .collect();
        let tools: HashMap<Arc<str>, ToolRoute> = file
            .tools
            .iter()
            .map(|(name, config)| {
                let public_name: Arc<str> = name.as_str().into();
                let route = ToolRoute {
                    public_name: public_name.clone(),
                    server: server_ids[config.server.as_str()],
                    upstream_name: config.upstream_name.as_deref().unwrap_or(name).into(),
                    description: config.description.as_deref().map(Arc::from),
                };
                (public_name, route)
            })
            .collect();
        let roles = file
            .roles
            .iter()
            .map(|(role, names)| {
                let mut view_tools: Vec<Arc<str>> = names
                    .iter()
                    .map(|n| tools[n.as_str()].public_name.clone())
                    .collect();
                view_tools.sort();
                let allowed = view_tools.iter().cloned().collect();
                let view = RoleView {
                    tools: view_tools,
                    allowed,
                };
                (Arc::from(role.as_str()), view)
            })
            .collect();
        let agents = file
            .agents
            .iter()
            .map(|(id, config)| {
                let mut token_sha256 = [0u8; 32];
                hex::decode_to_slice(&config.token_sha256, &mut token_sha256)
                    .expect("validation checks the token hash is 64 hex digits");
                AgentEntry {
                    id: id.as_str().into(),
                    role: config.role.as_str().into(),
                    token_sha256,
                }
            })
            .collect();
        Self {
            environment: file.environment.as_str().into(),
            http: file.http.clone(),
            servers,
            tools,
            roles,
            agents,
        }
    }

    pub fn servers(&self) -> &[ServerSpec] {
        &self.servers
    }

    pub fn server(&self, id: ServerId) -> &ServerSpec {
        &self.servers[id.0]
    }

    pub fn tool(&self, public_name: &str) -> Option<&ToolRoute> {
        self.tools.get(public_name)
    }

    /// Every tool routed to `server`.
    pub fn tools_of(&self, server: ServerId) -> impl Iterator<Item = &ToolRoute> {
        self.tools.values().filter(move |t| t.server == server)
    }

    /// The view of `role`; an unknown role sees nothing.
    pub fn role_view(&self, role: &str) -> Option<&RoleView> {
        self.roles.get(role)
    }

    pub fn agents(&self) -> &[AgentEntry] {
        &self.agents
    }
}

fn pairs<'a>(iter: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<(String, String)> {
    iter.map(|(k, v)| (k.clone(), v.clone())).collect()
}
