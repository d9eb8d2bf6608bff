//! The compiled catalog: an immutable snapshot of the world, built once from a
//! validated [`CatalogFile`] and shared read-only by every request.
//!
//! Lookups the hot path needs (tool by public name, a role's view) are
//! precomputed here so a request never walks the raw configuration.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod routing;

pub use routing::{Leg, Retry, Routing};

use crate::config::grants::{self, Kind};
use crate::config::{
    Annotations, CatalogFile, CredentialConfig, CredentialSettings, HttpSettings, IdentitySettings,
    ToolAuditConfig, UpstreamProtocol,
};
use crate::guardrails::pins::Pinning;

/// Index of a server in [`Catalog::servers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerId(pub usize);

/// How to reach one upstream MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub name: Arc<str>,
    pub transport: TransportSpec,
    pub timeout: Duration,
    pub forward_logs: bool,
    pub credential: CredentialConfig,
    pub protocol: UpstreamProtocol,
    /// How often the connection is pinged (`None`: never).
    pub ping_interval: Option<Duration>,
    /// How often the server's lists are fetched again unasked (`None`:
    /// only when it says they changed).
    pub refresh: Option<Duration>,
    /// What the server is told when it asks for roots outside a call.
    pub roots: Arc<[crate::config::RootConfig]>,
    /// Most tools taken from the server.
    pub max_tools: usize,
    /// `_meta` keys (or prefixes ending in `/`) its tool results lose.
    pub drop_meta: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The legacy HTTP+SSE transport: `url` is the event stream.
    Sse {
        url: String,
        headers: Vec<(String, String)>,
    },
}

/// Where a public tool or prompt name leads.
#[derive(Debug, Clone)]
pub struct Route {
    pub public_name: Arc<str>,
    pub server: ServerId,
    pub upstream_name: Arc<str>,
    /// Operator's description, replacing the upstream's when set.
    pub description: Option<Arc<str>>,
    /// Operator's title, replacing the upstream's when set.
    pub title: Option<Arc<str>>,
    /// Operator's hints, each replacing the upstream's.
    pub annotations: Annotations,
    /// The catalog's labels for policies.
    pub tags: Arc<[Arc<str>]>,
    /// Set when the audit trail keeps the arguments: the fields to redact.
    pub audit_arguments: Option<Arc<[Arc<str>]>>,
    /// A tool's own time limit, in place of its server's `timeout`.
    pub timeout: Option<std::time::Duration>,
    /// Every server the route leads to, `server` first (one, but for a
    /// tool with weighted targets or a fan-out).
    pub legs: Arc<[Leg]>,
    /// How calls are spread over the legs.
    pub routing: Routing,
    /// Whether a failed call may be tried again.
    pub retry: Option<Retry>,
    /// The tool's own limit on the size of its result.
    pub max_result_bytes: Option<usize>,
}

/// What each server's calls are checked for, beyond who may make them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerGuards {
    /// Check arguments against the tool's input schema.
    pub validate_arguments: bool,
    /// The largest result taken from it.
    pub max_result_bytes: Option<usize>,
}

/// A set of one server's resources: every URI that starts with `prefix`.
#[derive(Debug, Clone)]
pub struct ResourceSet {
    pub name: Arc<str>,
    pub server: ServerId,
    pub prefix: Arc<str>,
}

/// Public names a role is granted, sorted, with a set for lookups.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    sorted: Vec<Arc<str>>,
    set: HashSet<Arc<str>>,
}

impl Grants {
    fn new(names: &[String]) -> Self {
        let mut sorted: Vec<Arc<str>> = names.iter().map(|n| Arc::from(n.as_str())).collect();
        sorted.sort();
        let set = sorted.iter().cloned().collect();
        Self { sorted, set }
    }

    pub fn names(&self) -> &[Arc<str>] {
        &self.sorted
    }

    pub fn allows(&self, name: &str) -> bool {
        self.set.contains(name)
    }

    /// The names both grant.
    fn within(&self, other: &Grants) -> Grants {
        let both: Vec<String> = (self.sorted.iter())
            .filter(|name| other.allows(name))
            .map(|name| name.to_string())
            .collect();
        Grants::new(&both)
    }
}

/// What one role may use.
#[derive(Debug, Clone, Default)]
pub struct RoleView {
    pub tools: Grants,
    pub prompts: Grants,
    pub resources: Grants,
    /// Whether `tools/list` offers tool search instead of the tools.
    pub search: bool,
}

impl RoleView {
    /// What `grants` (of a role or an endpoint) cover in `file`.
    fn of(file: &CatalogFile, grants: &crate::config::RoleConfig) -> Self {
        let covered = |kind| Grants::new(&grants::covered(file, grants, kind));
        RoleView {
            tools: covered(Kind::Tools),
            prompts: covered(Kind::Prompts),
            resources: covered(Kind::Resources),
            search: grants.discovery == crate::config::Discovery::Search,
        }
    }

    /// What this view and `endpoint` both allow.
    fn within(&self, endpoint: &RoleView) -> RoleView {
        RoleView {
            tools: self.tools.within(&endpoint.tools),
            prompts: self.prompts.within(&endpoint.prompts),
            resources: self.resources.within(&endpoint.resources),
            search: self.search || endpoint.search,
        }
    }
}

/// Which kinds of a server's offering a role can see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reach {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
}

/// An agent that may authenticate with a service token.
#[derive(Debug, Clone)]
pub struct AgentEntry {
    pub id: Arc<str>,
    pub role: Arc<str>,
    pub revoked: bool,
    pub expires: Option<std::time::SystemTime>,
}

/// The immutable snapshot.
#[derive(Debug)]
pub struct Catalog {
    pub environment: Arc<str>,
    /// The `http` section, as configured.
    pub http: HttpSettings,
    /// The `credentials` section, as configured.
    pub credentials: CredentialSettings,
    /// The `identity` section, as configured.
    pub identity: IdentitySettings,
    /// The `vault` section, as configured.
    pub vault: Option<crate::config::vault::VaultConfig>,
    servers: Vec<ServerSpec>,
    /// Indexed by [`ServerId`], as `servers`.
    guards: Vec<ServerGuards>,
    tools: HashMap<Arc<str>, Route>,
    prompts: HashMap<Arc<str>, Route>,
    /// Longest prefix first, so the first match routes a URI.
    resources: Vec<ResourceSet>,
    roles: HashMap<Arc<str>, RoleView>,
    /// Endpoint -> role -> what the role sees through that endpoint.
    endpoints: HashMap<Arc<str>, HashMap<Arc<str>, RoleView>>,
    /// Agents by the SHA-256 of their token (validation keeps the hashes
    /// unique).
    agents: HashMap<[u8; 32], AgentEntry>,
    /// Admin ids by the SHA-256 of their token.
    admins: HashMap<[u8; 32], Arc<str>>,
    /// The lock of pinned definitions in force, if any.
    pinning: Option<Arc<Pinning>>,
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
                let transport = match (&config.stdio, &config.http, &config.sse) {
                    (Some(stdio), _, _) => TransportSpec::Stdio {
                        command: stdio.command.clone(),
                        args: stdio.args.clone(),
                        env: pairs(stdio.env.iter()),
                        cwd: base_dir.join(stdio.cwd.as_deref().unwrap_or(Path::new("."))),
                    },
                    (None, Some(http), _) => TransportSpec::Http {
                        url: http.url.clone(),
                        headers: pairs(http.headers.iter()),
                    },
                    (None, None, Some(sse)) => TransportSpec::Sse {
                        url: sse.url.clone(),
                        headers: pairs(sse.headers.iter()),
                    },
                    (None, None, None) => unreachable!("validation requires one transport"),
                };
                ServerSpec {
                    name: name.as_str().into(),
                    transport,
                    timeout: config.timeout,
                    forward_logs: config.forward_logs,
                    protocol: config.protocol,
                    ping_interval: Some(config.ping_interval).filter(|i| !i.is_zero()),
                    refresh: Some(config.refresh).filter(|i| !i.is_zero()),
                    roots: config.roots.iter().cloned().collect(),
                    credential: config.credential.clone(),
                    max_tools: config.max_tools,
                    drop_meta: config.drop_meta.clone(),
                }
            })
            .collect();
        let route = |name: &str,
                     leg: Leg,
                     description: &Option<String>,
                     tags: &[String],
                     audit: Option<&ToolAuditConfig>| {
            let public_name: Arc<str> = name.into();
            let route = Route {
                public_name: public_name.clone(),
                server: leg.server,
                upstream_name: leg.upstream_name.clone(),
                description: description.as_deref().map(Arc::from),
                title: None,
                annotations: Annotations::default(),
                tags: tags.iter().map(|t| Arc::from(t.as_str())).collect(),
                audit_arguments: audit
                    .filter(|a| a.arguments)
                    .map(|a| a.redact.iter().map(|f| Arc::from(f.as_str())).collect()),
                timeout: None,
                legs: Arc::from([leg]),
                routing: Routing::One,
                retry: None,
                max_result_bytes: None,
            };
            (public_name, route)
        };
        let tools = file
            .tools
            .iter()
            .map(|(name, t)| {
                let audit = Some(&t.audit);
                let (legs, routing) = routing::compile(name, t, &server_ids);
                let first = legs[0].clone();
                let (name, mut route) = route(name, first, &t.description, &t.tags, audit);
                route.timeout = t.timeout;
                route.title = t.title.as_deref().map(Arc::from);
                route.annotations = t.annotations;
                route.legs = legs.into();
                route.routing = routing;
                route.retry = routing::retry(t);
                route.max_result_bytes = t.max_result_bytes;
                (name, route)
            })
            .collect();
        let prompts = file
            .prompts
            .iter()
            .map(|(name, p)| {
                let leg = Leg {
                    server: server_ids[p.server.as_str()],
                    upstream_name: p.upstream_name.as_deref().unwrap_or(name).into(),
                };
                route(name, leg, &p.description, &[], None)
            })
            .collect();
        let mut resources: Vec<ResourceSet> = file
            .resources
            .iter()
            .map(|(name, set)| ResourceSet {
                name: name.as_str().into(),
                server: server_ids[set.server.as_str()],
                prefix: set.uri_prefix.as_str().into(),
            })
            .collect();
        resources.sort_by_key(|set| std::cmp::Reverse(set.prefix.len()));
        let roles: HashMap<Arc<str>, RoleView> = (file.roles.iter())
            .map(|(role, grants)| (Arc::from(role.as_str()), RoleView::of(file, grants)))
            .collect();
        let endpoints = (file.endpoints.iter())
            .map(|(endpoint, grants)| {
                let subset = RoleView::of(file, grants);
                let views = (roles.iter())
                    .map(|(role, view)| (role.clone(), view.within(&subset)))
                    .collect();
                (Arc::from(endpoint.as_str()), views)
            })
            .collect();
        let hash = |text: &str| {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(text, &mut digest)
                .expect("validation checks the token hash is 64 hex digits");
            digest
        };
        let admins = file
            .admins
            .iter()
            .map(|(id, admin)| (hash(&admin.token_sha256), Arc::from(id.as_str())))
            .collect();
        let agents = file
            .agents
            .iter()
            .map(|(id, config)| {
                let entry = AgentEntry {
                    id: id.as_str().into(),
                    role: config.role.as_str().into(),
                    revoked: config.revoked,
                    expires: config.expires,
                };
                (hash(&config.token_sha256), entry)
            })
            .collect();
        let guards = (file.servers.iter())
            .map(|(_, server)| ServerGuards {
                validate_arguments: server.validate_arguments,
                max_result_bytes: server.max_result_bytes,
            })
            .collect();
        Self {
            environment: file.environment.as_str().into(),
            http: file.http.clone(),
            credentials: file.credentials.clone(),
            identity: file.identity.clone(),
            vault: file.vault.clone(),
            servers,
            guards,
            tools,
            prompts,
            resources,
            roles,
            endpoints,
            agents,
            admins,
            pinning: None,
        }
    }

    /// The lock of pinned definitions in force (read beside the catalog
    /// file, so set after compiling it).
    pub fn set_pinning(&mut self, pinning: Option<Arc<Pinning>>) {
        self.pinning = pinning;
    }

    pub fn pinning(&self) -> Option<&Arc<Pinning>> {
        self.pinning.as_ref()
    }

    /// The admin whose token has this SHA-256.
    pub fn admin_by_token_sha256(&self, digest: &[u8; 32]) -> Option<&Arc<str>> {
        self.admins.get(digest)
    }

    pub fn servers(&self) -> &[ServerSpec] {
        &self.servers
    }

    /// The catalog's own name of role `name`, if it defines one.
    pub fn role_name(&self, name: &str) -> Option<Arc<str>> {
        self.roles.get_key_value(name).map(|(name, _)| name.clone())
    }

    /// The id of the server named `name`, if this catalog has it.
    pub fn server_id(&self, name: &str) -> Option<ServerId> {
        self.servers
            .iter()
            .position(|s| &*s.name == name)
            .map(ServerId)
    }

    pub fn server(&self, id: ServerId) -> &ServerSpec {
        &self.servers[id.0]
    }

    /// What calls to server `id` are checked for.
    pub fn guards(&self, id: ServerId) -> ServerGuards {
        self.guards[id.0]
    }

    pub fn tool(&self, public_name: &str) -> Option<&Route> {
        self.tools.get(public_name)
    }

    pub fn prompt(&self, public_name: &str) -> Option<&Route> {
        self.prompts.get(public_name)
    }

    /// Every resource set, longest prefix first.
    pub fn resource_sets(&self) -> &[ResourceSet] {
        &self.resources
    }

    /// What `role` is granted on `server`: used to tell a client its view
    /// changed when that server's offering does.
    pub fn role_reach(&self, role: &str, server: ServerId) -> Reach {
        let Some(view) = self.roles.get(role) else {
            return Reach::default();
        };
        let routed = |grants: &Grants, routes: &HashMap<Arc<str>, Route>| {
            grants
                .names()
                .iter()
                .any(|name| routes.get(name).is_some_and(|r| r.server == server))
        };
        Reach {
            tools: routed(&view.tools, &self.tools),
            prompts: routed(&view.prompts, &self.prompts),
            resources: self
                .resources
                .iter()
                .any(|set| set.server == server && view.resources.allows(&set.name)),
        }
    }

    /// Which of `role`'s lists differ from what `before` showed it: a name
    /// granted or withdrawn, or one that leads elsewhere or reads otherwise.
    pub fn view_changes(&self, before: &Catalog, role: &str) -> Reach {
        let [tools, prompts, resources] = self.view_digest(role);
        let [was_tools, was_prompts, was_resources] = before.view_digest(role);
        Reach {
            tools: tools != was_tools,
            prompts: prompts != was_prompts,
            resources: resources != was_resources,
        }
    }

    /// A digest per kind of what `role` is granted and where each leads.
    fn view_digest(&self, role: &str) -> [u64; 3] {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let Some(view) = self.roles.get(role) else {
            return [0; 3];
        };
        let routes = |grants: &Grants, routes: &HashMap<Arc<str>, Route>| {
            let mut hasher = DefaultHasher::new();
            for name in grants.names() {
                name.hash(&mut hasher);
                if let Some(route) = routes.get(name) {
                    for leg in route.legs.iter() {
                        self.server(leg.server).name.hash(&mut hasher);
                        leg.upstream_name.hash(&mut hasher);
                    }
                    route.description.hash(&mut hasher);
                    route.title.hash(&mut hasher);
                    route.annotations.hash(&mut hasher);
                }
            }
            hasher.finish()
        };
        let mut resources = DefaultHasher::new();
        for set in self
            .resources
            .iter()
            .filter(|s| view.resources.allows(&s.name))
        {
            set.name.hash(&mut resources);
            self.server(set.server).name.hash(&mut resources);
            set.prefix.hash(&mut resources);
        }
        [
            routes(&view.tools, &self.tools),
            routes(&view.prompts, &self.prompts),
            resources.finish(),
        ]
    }

    /// Every tool, in no particular order.
    pub fn tools(&self) -> impl Iterator<Item = &Route> {
        self.tools.values()
    }

    /// Every prompt, in no particular order.
    pub fn prompts(&self) -> impl Iterator<Item = &Route> {
        self.prompts.values()
    }

    /// Every tool routed to `server` (by any of its legs): its public
    /// name and its name there.
    pub fn tools_of(&self, server: ServerId) -> impl Iterator<Item = (&Arc<str>, &Arc<str>)> {
        (self.tools.values()).flat_map(move |route| {
            (route.legs.iter())
                .filter(move |leg| leg.server == server)
                .map(|leg| (&route.public_name, &leg.upstream_name))
        })
    }

    /// The view of `role`; an unknown role sees nothing.
    pub fn role_view(&self, role: &str) -> Option<&RoleView> {
        self.roles.get(role)
    }

    /// What `role` sees through `endpoint` (the whole catalog without
    /// one). An unknown endpoint shows nothing, as an empty one does: no
    /// answer tells which endpoints exist.
    pub fn view(&self, role: &str, endpoint: Option<&str>) -> Option<&RoleView> {
        match endpoint {
            None => self.roles.get(role),
            Some(endpoint) => self.endpoints.get(endpoint)?.get(role),
        }
    }

    /// Every agent, in no particular order.
    pub fn agents(&self) -> impl Iterator<Item = &AgentEntry> {
        self.agents.values()
    }

    /// The agent whose token has this SHA-256.
    pub fn agent_by_token_sha256(&self, digest: &[u8; 32]) -> Option<&AgentEntry> {
        self.agents.get(digest)
    }
}

fn pairs<'a>(iter: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<(String, String)> {
    iter.map(|(k, v)| (k.clone(), v.clone())).collect()
}
