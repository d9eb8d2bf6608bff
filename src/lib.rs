//! MCP Control Plane: one address between AI agents and MCP servers.
//!
//! Every request takes one path, [`pipeline`], a list of named stages:
//! record ([`audit`]) -> admit ([`identity`]: service tokens, OIDC JWTs) ->
//! resolve (the caller's view of the [`catalog`]) -> authorize ([`policy`]:
//! Rego) -> credential ([`credentials`]) -> call the upstream ([`upstream`])
//! or list ([`discovery`]). Front doors in [`api`] are thin adapters over it.
//! [`config`] reads the catalog file, [`catalog`] is its compiled form and
//! [`live`] the version in force, reloaded when its files change. The audit
//! writer hands finished records to observers in [`telemetry`] (metrics,
//! spans). Leaves every floor reads: [`uri`] (resource URIs),
//! [`vocabulary`] (the request's words), [`trace_context`] (W3C trace
//! context). The example's MCP servers are another crate
//! (`mcp-example-servers`), used only by the `example-server` command.

pub mod api;
pub mod audit;
pub mod aws;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod discovery;
pub mod guardrails;
pub mod identity;
pub mod live;
pub mod outbound;
pub mod pipeline;
pub mod policy;
pub mod router;
pub mod shared;
pub mod telemetry;
pub mod trace_context;
pub mod upstream;
pub mod uri;
pub mod vocabulary;
