//! `servers.<name>.expose`: publish a server's tools and prompts without
//! listing each one. A real MCP server offers dozens of tools and adds
//! more in new releases; with `expose: {prefix: "gh_", include:
//! ["issue_*"], exclude: ["*_delete"]}` every tool (and prompt) it offers
//! whose name the globs admit is public as `gh_<name>`.
//!
//! Which names that gives depends on what the server lists, so it is
//! worked out at run time ([`Exposure::of`]) every time a server's lists
//! change, and applied to the catalog file ([`Exposure::apply`]) as if the
//! operator had written each entry: grants, policy, discovery and routing
//! then treat an exposed tool like any other. A name that is not a valid
//! public name, or that two servers would both give, is held back and
//! reported, never shadowing the other. An explicit `tools:` or
//! `prompts:` entry for the same upstream name wins: it is how an operator
//! renames one or rewrites its description; an explicit entry whose name a
//! rule could give to another tool is refused by validation
//! ([`collisions`]), so exposure never meets one at run time.

use std::collections::{HashMap, HashSet};

use globset::{GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::grants::{self, Kind};
use super::validate::is_valid_name;
use super::{CatalogFile, PromptConfig, ToolConfig};

/// How one server's offering is published.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExposeConfig {
    /// Put before each upstream name to make the public one (`gh_`).
    #[serde(default)]
    pub prefix: String,
    /// Globs over upstream names: only those matching one are exposed
    /// (default: all).
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs over upstream names never exposed, even when included.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl ExposeConfig {
    /// What is wrong with this rule: each the field and the problem.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        // The prefix is the start of a public name: the same characters,
        // and room left for at least one of the server's.
        if !self.prefix.is_empty() && !is_valid_name(&format!("{}x", self.prefix)) {
            let problem = "must be at most 127 of the characters A-Z a-z 0-9 _ . -";
            problems.push(("prefix".to_owned(), problem.to_owned()));
        }
        for (field, globs) in [("include", &self.include), ("exclude", &self.exclude)] {
            for (i, glob) in globs.iter().enumerate() {
                if let Err(problem) = grants::glob(glob) {
                    problems.push((format!("{field}[{i}]"), problem));
                }
            }
        }
        problems
    }

    /// The rule compiled for matching. (Rules are validated first: an
    /// invalid glob admits nothing.)
    pub fn rule(&self) -> Rule<'_> {
        let set = |globs: &[String]| {
            let mut set = GlobSetBuilder::new();
            for glob in globs.iter().filter_map(|g| globset::Glob::new(g).ok()) {
                set.add(glob);
            }
            set.build().unwrap_or_else(|_| GlobSet::empty())
        };
        Rule {
            prefix: &self.prefix,
            include_all: self.include.is_empty(),
            include: set(&self.include),
            exclude: set(&self.exclude),
        }
    }
}

/// An [`ExposeConfig`] ready to match names.
pub struct Rule<'a> {
    prefix: &'a str,
    include_all: bool,
    include: GlobSet,
    exclude: GlobSet,
}

impl Rule<'_> {
    /// Whether the server's `upstream` name is exposed.
    pub fn admits(&self, upstream: &str) -> bool {
        (self.include_all || self.include.is_match(upstream)) && !self.exclude.is_match(upstream)
    }

    /// The upstream name that public name `public` would be exposed from.
    pub fn upstream_of<'n>(&self, public: &'n str) -> Option<&'n str> {
        public
            .strip_prefix(self.prefix)
            .filter(|upstream| !upstream.is_empty() && self.admits(upstream))
    }
}

/// The servers whose offering is exposed, with their rules, in catalog
/// order.
pub fn rules(catalog: &CatalogFile) -> impl Iterator<Item = (&str, Rule<'_>)> {
    (catalog.servers.iter())
        .filter_map(|(name, server)| Some((name.as_str(), server.expose.as_ref()?.rule())))
}

/// Whether a server's rule could expose a tool or prompt named `public`.
pub fn could_expose(catalog: &CatalogFile, public: &str) -> bool {
    rules(catalog).any(|(_, rule)| rule.upstream_of(public).is_some())
}

/// Whether the names glob `grant` matches could include exposed ones: its
/// literal start and some rule's prefix agree (one begins with the other).
pub fn glob_could_match(catalog: &CatalogFile, grant: &str) -> bool {
    let literal = &grant[..grant.find(['*', '?', '[']).unwrap_or(grant.len())];
    (rules(catalog))
        .any(|(_, rule)| literal.starts_with(rule.prefix) || rule.prefix.starts_with(literal))
}

/// The catalog's own tools and prompts whose names a rule could give to
/// a tool the entry does not route to: each the catalog path and the
/// problem. (Which names a server offers is known only at run time, so a
/// possible collision is refused.)
pub fn collisions(catalog: &CatalogFile) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for kind in [Kind::Tools, Kind::Prompts] {
        let explicit = explicitly_routed(catalog, kind);
        let names: Vec<&String> = match kind {
            Kind::Prompts => catalog.prompts.iter().map(|(name, _)| name).collect(),
            _ => catalog.tools.iter().map(|(name, _)| name).collect(),
        };
        for name in names {
            for (server, rule) in rules(catalog) {
                let Some(upstream) = rule.upstream_of(name) else {
                    continue;
                };
                if !explicit.contains(&(server, upstream)) {
                    let singular = kind.singular();
                    problems.push((
                        format!("{}.{name}", kind.section()),
                        format!(
                            "servers.{server}.expose would give this name to {server}'s {singular} `{upstream}`: exclude `{upstream}` there or choose another name"
                        ),
                    ));
                }
            }
        }
    }
    problems
}

/// One exposed tool or prompt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Exposed {
    pub public: String,
    pub server: String,
    pub upstream: String,
}

/// A name a rule would expose but that is held back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    /// `tool` or `prompt`.
    pub kind: &'static str,
    pub server: String,
    pub upstream_name: String,
    /// The public name it would have.
    pub name: String,
    pub reason: String,
}

/// What the rules expose, given what the servers offer now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exposure {
    pub tools: Vec<Exposed>,
    pub prompts: Vec<Exposed>,
    pub held: Vec<Held>,
}

impl Exposure {
    /// Work out what `catalog`'s rules expose of what each server offers
    /// (`offered(server, kind)`: its upstream names). Where two servers
    /// would give the same public name, the one `before` exposed keeps it;
    /// with neither exposed before, both are held back.
    pub fn of(
        catalog: &CatalogFile,
        offered: impl Fn(&str, Kind) -> Vec<String>,
        before: &Exposure,
    ) -> Exposure {
        let mut exposure = Exposure::default();
        for kind in [Kind::Tools, Kind::Prompts] {
            let before = match kind {
                Kind::Prompts => &before.prompts,
                _ => &before.tools,
            };
            let (exposed, held) = expose_kind(catalog, kind, &offered, before);
            match kind {
                Kind::Prompts => exposure.prompts = exposed,
                _ => exposure.tools = exposed,
            }
            exposure.held.extend(held);
        }
        exposure
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.prompts.is_empty() && self.held.is_empty()
    }

    /// `catalog` with an entry for each exposed tool and prompt.
    pub fn apply(&self, catalog: &CatalogFile) -> CatalogFile {
        let mut file = catalog.clone();
        for exposed in &self.tools {
            let tool = ToolConfig {
                server: Some(exposed.server.clone()),
                upstream_name: Some(exposed.upstream.clone()),
                ..ToolConfig::default()
            };
            file.tools.0.insert(exposed.public.clone(), tool);
        }
        for exposed in &self.prompts {
            let prompt = PromptConfig {
                server: exposed.server.clone(),
                upstream_name: Some(exposed.upstream.clone()),
                description: None,
            };
            file.prompts.0.insert(exposed.public.clone(), prompt);
        }
        file
    }
}

/// The exposed names of one kind, and those held back.
fn expose_kind(
    catalog: &CatalogFile,
    kind: Kind,
    offered: &impl Fn(&str, Kind) -> Vec<String>,
    before: &[Exposed],
) -> (Vec<Exposed>, Vec<Held>) {
    let singular = kind.singular();
    let explicit = explicitly_routed(catalog, kind);
    let mut held = Vec::new();
    let mut candidates: HashMap<String, Vec<Exposed>> = HashMap::new();
    for (server, rule) in rules(catalog) {
        let mut names = offered(server, kind);
        names.sort();
        for upstream in names {
            if explicit.contains(&(server, upstream.as_str())) || !rule.admits(&upstream) {
                continue;
            }
            let public = format!("{}{upstream}", rule.prefix);
            let candidate = Exposed {
                public,
                server: server.to_owned(),
                upstream,
            };
            if !is_valid_name(&candidate.public) {
                let reason = "not a valid public name (^[A-Za-z0-9_.-]{1,128}$)".to_owned();
                held.push(hold(singular, candidate, reason));
            } else {
                (candidates.entry(candidate.public.clone()).or_default()).push(candidate);
            }
        }
    }
    let mut exposed = Vec::new();
    for (_, mut rivals) in candidates {
        if rivals.len() == 1 {
            exposed.extend(rivals);
            continue;
        }
        let incumbent = rivals.iter().position(|r| before.contains(r));
        let winner = incumbent.map(|at| rivals.swap_remove(at));
        for rival in rivals {
            let reason = match &winner {
                Some(w) => format!("server `{}` already exposes that name", w.server),
                None => "more than one server would expose that name".to_owned(),
            };
            held.push(hold(singular, rival, reason));
        }
        exposed.extend(winner);
    }
    exposed.sort();
    held.sort_by(|a, b| (&a.name, &a.server).cmp(&(&b.name, &b.server)));
    (exposed, held)
}

fn hold(kind: &'static str, candidate: Exposed, reason: String) -> Held {
    Held {
        kind,
        server: candidate.server,
        upstream_name: candidate.upstream,
        name: candidate.public,
        reason,
    }
}

/// The (server, upstream name) pairs the catalog's own entries of `kind`
/// route to: an exposure rule leaves them to those entries.
fn explicitly_routed(catalog: &CatalogFile, kind: Kind) -> HashSet<(&str, &str)> {
    match kind {
        Kind::Prompts => (catalog.prompts.iter())
            .map(|(name, p)| {
                (
                    p.server.as_str(),
                    p.upstream_name.as_deref().unwrap_or(name),
                )
            })
            .collect(),
        _ => (catalog.tools.iter())
            .flat_map(|(name, tool)| {
                let default = tool.upstream_name.as_deref().unwrap_or(name);
                (tool.legs().into_iter())
                    .map(move |(server, upstream)| (server, upstream.unwrap_or(default)))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = "
environment: test
servers:
  github:
    http: {url: \"http://127.0.0.1:1/mcp\"}
    expose: {prefix: gh_, include: [\"issue_*\", \"pull_*\"], exclude: [\"*_delete\"]}
  mirror:
    http: {url: \"http://127.0.0.1:2/mcp\"}
    expose: {prefix: gh_}
  docs: {http: {url: \"http://127.0.0.1:3/mcp\"}}
tools:
  issue_reader: {server: github, upstream_name: issue_read, description: Ours}
roles: {}
agents: {}
";

    fn catalog() -> CatalogFile {
        super::super::load::parse_str(CATALOG, false, std::path::Path::new("c.yaml")).unwrap()
    }

    fn offered(server: &str, kind: Kind) -> Vec<String> {
        let names: &[&str] = match (server, kind) {
            ("github", Kind::Tools) => &[
                "issue_read",
                "issue_write",
                "issue_delete",
                "pull_merge",
                "pull_list",
                "repo_list",
                "issue_bad name",
            ],
            ("github", Kind::Prompts) => &["issue_summary"],
            ("mirror", Kind::Tools) => &["pull_list", "stars"],
            _ => &[],
        };
        names.iter().map(|n| n.to_string()).collect()
    }

    fn public(exposed: &[Exposed]) -> Vec<(&str, &str)> {
        (exposed.iter())
            .map(|e| (e.public.as_str(), e.server.as_str()))
            .collect()
    }

    #[test]
    fn a_rule_exposes_what_it_admits_under_its_prefix_and_holds_back_what_collides() {
        let exposure = Exposure::of(&catalog(), offered, &Exposure::default());
        // issue_read is the catalog's (renamed), issue_delete excluded,
        // repo_list not included.
        assert_eq!(
            public(&exposure.tools),
            [
                ("gh_issue_write", "github"),
                ("gh_pull_merge", "github"),
                ("gh_stars", "mirror")
            ]
        );
        assert_eq!(public(&exposure.prompts), [("gh_issue_summary", "github")]);
        let held: Vec<(&str, &str, &str)> = (exposure.held.iter())
            .map(|h| (h.name.as_str(), h.server.as_str(), h.reason.as_str()))
            .collect();
        assert_eq!(
            held,
            [
                (
                    "gh_issue_bad name",
                    "github",
                    "not a valid public name (^[A-Za-z0-9_.-]{1,128}$)"
                ),
                (
                    "gh_pull_list",
                    "github",
                    "more than one server would expose that name"
                ),
                (
                    "gh_pull_list",
                    "mirror",
                    "more than one server would expose that name"
                ),
            ]
        );
    }

    #[test]
    fn the_server_that_had_a_name_keeps_it_when_another_offers_it_too() {
        let before = Exposure {
            tools: vec![Exposed {
                public: "gh_pull_list".into(),
                server: "mirror".into(),
                upstream: "pull_list".into(),
            }],
            ..Exposure::default()
        };
        let exposure = Exposure::of(&catalog(), offered, &before);
        assert!(public(&exposure.tools).contains(&("gh_pull_list", "mirror")));
        let held = (exposure.held.iter())
            .find(|h| h.name == "gh_pull_list")
            .unwrap();
        assert_eq!(
            (held.server.as_str(), held.reason.as_str()),
            ("github", "server `mirror` already exposes that name")
        );
    }

    #[test]
    fn applied_it_reads_as_if_the_operator_had_listed_each_entry() {
        let catalog = catalog();
        let file = Exposure::of(&catalog, offered, &Exposure::default()).apply(&catalog);
        let tool = file.tools.get("gh_issue_write").unwrap();
        assert_eq!(tool.server.as_deref(), Some("github"));
        assert_eq!(tool.upstream_name.as_deref(), Some("issue_write"));
        assert_eq!(
            file.prompts.get("gh_issue_summary").unwrap().server,
            "github"
        );
        let compiled = crate::catalog::Catalog::compile(&file, ".".as_ref());
        let route = compiled.tool("gh_issue_write").unwrap();
        assert_eq!(&*compiled.server(route.server).name, "github");
        assert_eq!(&*route.upstream_name, "issue_write");
        assert!(compiled.prompt("gh_issue_summary").is_some());
    }

    #[test]
    fn what_a_rule_could_expose_is_known_without_a_server() {
        let catalog = catalog();
        assert!(could_expose(&catalog, "gh_issue_anything"));
        assert!(could_expose(&catalog, "gh_repo_list"), "mirror exposes all");
        assert!(!could_expose(&catalog, "gh_"));
        assert!(!could_expose(&catalog, "docs_search"));
        assert!(glob_could_match(&catalog, "gh_issue_*"));
        assert!(glob_could_match(&catalog, "g*"));
        assert!(!glob_could_match(&catalog, "docs_*"));
    }

    #[test]
    fn a_catalog_name_a_rule_could_give_another_tool_is_refused() {
        let text = CATALOG.replace("tools:\n", "tools:\n  gh_pull_merge: {server: docs}\n  gh_issue_write: {server: github, upstream_name: issue_write}\n");
        let errors = super::super::load::parse_str(&text, false, "c.yaml".as_ref()).unwrap_err();
        let errors: Vec<String> = errors
            .0
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect();
        // gh_issue_write routes where github's rule would (that tool,
        // described in place), but mirror's rule could give it too.
        assert_eq!(
            errors,
            [
                "tools.gh_issue_write: servers.mirror.expose would give this name to mirror's tool `issue_write`: exclude `issue_write` there or choose another name",
                "tools.gh_pull_merge: servers.github.expose would give this name to github's tool `pull_merge`: exclude `pull_merge` there or choose another name",
                "tools.gh_pull_merge: servers.mirror.expose would give this name to mirror's tool `pull_merge`: exclude `pull_merge` there or choose another name",
            ]
        );
    }

    #[test]
    fn bad_prefixes_and_globs_are_problems() {
        let rule = ExposeConfig {
            prefix: "gh/".into(),
            include: vec!["[a".into()],
            exclude: vec!["ok_*".into()],
        };
        let fields: Vec<String> = rule.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["prefix", "include[0]"]);
        assert!(ExposeConfig::default().problems().is_empty());
    }
}
