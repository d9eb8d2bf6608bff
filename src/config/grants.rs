//! What a role's grants cover. A grant names a public tool, prompt or
//! resource set (`echo`), or is a glob over those names (`gh_*`,
//! `read_?`, `[ab]*`), and a role may also grant whole servers
//! (`servers: [github]`): every tool, prompt and resource set the catalog
//! routes to one of them. The catalog compiles each role into the plain
//! set of names it covers ([`covered`]), so listing and calling consult
//! the same set and a name the catalog adds later (a tool a server's
//! `expose` rule publishes when the server offers it) is covered only if
//! a grant matches it.

use std::collections::HashSet;

use globset::{Glob, GlobMatcher};

use super::{CatalogFile, RoleConfig, expose};

/// The three kinds a role is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tools,
    Prompts,
    Resources,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Tools, Kind::Resources, Kind::Prompts];

    /// The section of a role that grants this kind.
    pub fn section(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
        }
    }

    /// One of this kind, in messages.
    pub fn singular(self) -> &'static str {
        match self {
            Self::Tools => "tool",
            Self::Prompts => "prompt",
            Self::Resources => "resource",
        }
    }

    /// Whether `catalog` has one of this kind named `name`.
    pub fn exists(self, catalog: &CatalogFile, name: &str) -> bool {
        match self {
            Self::Tools => catalog.tools.contains_key(name),
            Self::Prompts => catalog.prompts.contains_key(name),
            Self::Resources => catalog.resources.contains_key(name),
        }
    }

    /// The names of this kind that `role` (or an endpoint) grants.
    pub fn grants(self, role: &RoleConfig) -> &[String] {
        match self {
            Self::Tools => &role.tools,
            Self::Prompts => &role.prompts,
            Self::Resources => &role.resources,
        }
    }

    /// Every public name of this kind in `catalog`, with the servers it
    /// routes to.
    fn names(self, catalog: &CatalogFile) -> Vec<(&str, Vec<&str>)> {
        match self {
            Self::Tools => (catalog.tools.iter())
                .map(|(name, tool)| {
                    (
                        name.as_str(),
                        tool.legs().into_iter().map(|l| l.0).collect(),
                    )
                })
                .collect(),
            Self::Prompts => (catalog.prompts.iter())
                .map(|(name, prompt)| (name.as_str(), vec![prompt.server.as_str()]))
                .collect(),
            Self::Resources => (catalog.resources.iter())
                .map(|(name, set)| (name.as_str(), vec![set.server.as_str()]))
                .collect(),
        }
    }
}

/// Whether a grant is a glob rather than a name.
pub fn is_glob(grant: &str) -> bool {
    grant.contains(['*', '?', '['])
}

/// The glob `grant`, or why it is not one.
pub fn glob(grant: &str) -> Result<GlobMatcher, String> {
    Glob::new(grant)
        .map(|glob| glob.compile_matcher())
        .map_err(|error| format!("not a valid glob: {}", error.kind()))
}

/// The public names of `kind` that `role` covers, sorted. (Grants are
/// validated first: an invalid glob covers nothing.)
pub fn covered(catalog: &CatalogFile, role: &RoleConfig, kind: Kind) -> Vec<String> {
    let grants = kind.grants(role);
    let globs: Vec<GlobMatcher> = (grants.iter())
        .filter(|grant| is_glob(grant))
        .filter_map(|grant| glob(grant).ok())
        .collect();
    let mut names: Vec<String> = (kind.names(catalog).into_iter())
        .filter(|(name, servers)| {
            grants.iter().any(|grant| grant == name)
                || globs.iter().any(|glob| glob.is_match(name))
                || servers.iter().any(|s| role.servers.iter().any(|g| g == s))
        })
        .map(|(name, _)| name.to_owned())
        .collect();
    names.sort();
    names
}

/// What is wrong with the grants of a role or an endpoint at catalog path
/// `at`: each the path and the problem. A plain name must exist, or be
/// one a server's `expose` rule could give.
pub fn problems(catalog: &CatalogFile, at: &str, grants: &RoleConfig) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for kind in Kind::ALL {
        let mut seen = HashSet::new();
        for (i, name) in kind.grants(grants).iter().enumerate() {
            let path = format!("{at}.{}[{i}]", kind.section());
            let exists = kind.exists(catalog, name)
                || (kind != Kind::Resources && expose::could_expose(catalog, name));
            let kind = kind.singular();
            if is_glob(name) {
                if let Err(problem) = glob(name) {
                    problems.push((path, problem));
                } else if !seen.insert(name) {
                    problems.push((path, format!("the glob `{name}` is listed twice")));
                }
            } else if !exists {
                problems.push((path, format!("unknown {kind} `{name}`")));
            } else if !seen.insert(name) {
                problems.push((path, format!("{kind} `{name}` is listed twice")));
            }
        }
    }
    let mut seen = HashSet::new();
    for (i, server) in grants.servers.iter().enumerate() {
        let path = format!("{at}.servers[{i}]");
        if !catalog.servers.contains_key(server) {
            problems.push((path, format!("unknown server `{server}`")));
        } else if !seen.insert(server) {
            problems.push((path, format!("server `{server}` is listed twice")));
        }
    }
    problems
}

/// Grants of roles and endpoints that cover nothing: each is the catalog
/// path and what to say.
pub fn warnings(catalog: &CatalogFile) -> Vec<(String, String)> {
    let mut warnings = Vec::new();
    for (section, entries) in [("roles", &catalog.roles), ("endpoints", &catalog.endpoints)] {
        for (name, grants) in entries.iter() {
            let at = format!("{section}.{name}");
            warnings.extend(covering_nothing(catalog, &at, grants));
        }
    }
    warnings
}

/// The grants at catalog path `at` that cover nothing.
fn covering_nothing(catalog: &CatalogFile, at: &str, role: &RoleConfig) -> Vec<(String, String)> {
    let mut warnings = Vec::new();
    for kind in Kind::ALL {
        let names = kind.names(catalog);
        for (i, grant) in kind.grants(role).iter().enumerate() {
            if !is_glob(grant) {
                // A name no entry gives, that only an `expose` rule could:
                // a typo passes until the server offers no such tool.
                let exposable = kind != Kind::Resources && expose::could_expose(catalog, grant);
                if !kind.exists(catalog, grant) && exposable {
                    let path = format!("{at}.{}[{i}]", kind.section());
                    let text = format!(
                        "no catalog entry gives the {} `{grant}`: only an `expose` rule could, if its server offers it",
                        kind.singular()
                    );
                    warnings.push((path, text));
                }
                continue;
            }
            let Ok(matcher) = glob(grant) else {
                continue;
            };
            let exposable = kind != Kind::Resources && expose::glob_could_match(catalog, grant);
            if !exposable && !names.iter().any(|(name, _)| matcher.is_match(name)) {
                let path = format!("{at}.{}[{i}]", kind.section());
                let text = format!("the glob `{grant}` matches no {}", kind.singular());
                warnings.push((path, text));
            }
        }
    }
    for (i, server) in role.servers.iter().enumerate() {
        let routes_any = (Kind::ALL.iter()).any(|kind| {
            kind.names(catalog)
                .iter()
                .any(|(_, s)| s.contains(&server.as_str()))
        });
        let exposes = (catalog.servers.get(server)).is_some_and(|s| s.expose.is_some());
        if !routes_any && !exposes {
            let path = format!("{at}.servers[{i}]");
            let text = format!("the catalog routes no tool, prompt or resource set to `{server}`");
            warnings.push((path, text));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = "
environment: test
servers:
  github: {http: {url: \"http://127.0.0.1:1/mcp\"}}
  docs: {http: {url: \"http://127.0.0.1:2/mcp\"}}
  spare: {http: {url: \"http://127.0.0.1:3/mcp\"}}
tools:
  gh_issue_read: {server: github}
  gh_issue_write: {server: github}
  gh_pull_read: {server: github}
  search_docs: {server: docs}
  compare: {servers: [github, docs]}
prompts:
  gh_summary: {server: github}
resources:
  manuals: {server: docs, uri_prefix: \"docs://\"}
roles:
  readers: {tools: [\"gh_*_read\", search_docs]}
  github: {servers: [github]}
  docs: {servers: [docs], tools: [\"nothing_*\"], prompts: [\"gh_?ummary\"]}
  idle: {servers: [spare]}
agents: {}
";

    fn catalog() -> CatalogFile {
        super::super::load::parse_str(CATALOG, false, std::path::Path::new("c.yaml")).unwrap()
    }

    fn covers(role: &str, kind: Kind) -> Vec<String> {
        let catalog = catalog();
        let role = catalog
            .roles
            .iter()
            .find(|(name, _)| *name == role)
            .unwrap()
            .1;
        covered(&catalog, role, kind)
    }

    #[test]
    fn names_globs_and_servers_each_cover_what_they_name() {
        assert_eq!(
            covers("readers", Kind::Tools),
            ["gh_issue_read", "gh_pull_read", "search_docs"]
        );
        assert!(covers("readers", Kind::Prompts).is_empty());
        // A server grant covers each kind routed to it, a fan-out through it too.
        let github = ["compare", "gh_issue_read", "gh_issue_write", "gh_pull_read"];
        assert_eq!(covers("github", Kind::Tools), github);
        assert_eq!(covers("github", Kind::Prompts), ["gh_summary"]);
        assert!(covers("github", Kind::Resources).is_empty());
        assert_eq!(covers("docs", Kind::Tools), ["compare", "search_docs"]);
        assert_eq!(covers("docs", Kind::Prompts), ["gh_summary"]);
        assert_eq!(covers("docs", Kind::Resources), ["manuals"]);
    }

    #[test]
    fn grants_that_cover_nothing_are_warned_about() {
        let warnings = warnings(&catalog());
        assert_eq!(
            warnings,
            [
                (
                    "roles.docs.tools[0]".to_owned(),
                    "the glob `nothing_*` matches no tool".to_owned()
                ),
                (
                    "roles.idle.servers[0]".to_owned(),
                    "the catalog routes no tool, prompt or resource set to `spare`".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn only_globs_are_globs_and_bad_ones_are_refused() {
        assert!(!is_glob("gh_issue_read"));
        assert!(is_glob("gh_*") && is_glob("read_?") && is_glob("[ab]*"));
        assert!(glob("gh_*").unwrap().is_match("gh_x"));
        assert!(glob("[ab").unwrap_err().contains("not a valid glob"));
    }
}
