//! MCP Control Plane: one address between AI agents and MCP servers.
//!
//! Every request takes one path, [`pipeline`]: authenticate ([`identity`]:
//! service tokens, OIDC JWTs) -> the caller's view of the catalog
//! ([`discovery`]) -> authorize ([`policy`]: the role, then Rego) -> mint the
//! upstream's credential ([`credentials`]) -> call the upstream
//! ([`upstream`]) -> record durably ([`audit`]), with spans and metrics
//! ([`telemetry`]). Front doors in [`api`] are thin adapters over it.
//! [`config`] reads the catalog file and [`catalog`] is its compiled,
//! immutable form; [`uri`] is the one place resource URIs are judged, and
//! [`vocabulary`] holds the request's words every floor shares.

pub mod api;
pub mod audit;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod discovery;
pub mod example_servers;
pub mod identity;
pub mod pipeline;
pub mod policy;
pub mod telemetry;
pub mod upstream;
pub mod uri;
pub mod vocabulary;
