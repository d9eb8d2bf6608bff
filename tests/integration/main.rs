//! Integration tests: the control plane binary on an ephemeral port, talking
//! to real MCP servers (stdio children and Streamable HTTP on loopback)
//! through real HTTP.

mod audit;
mod audit_failures;
mod audit_sinks;
mod aws;
mod browser;
mod check;
mod clients;
mod common;
mod connections;
mod console;
mod credentials;
mod expose;
mod fleet;
mod grants;
mod guardrails;
mod identity;
mod limits;
mod live;
mod mcp;
mod opa;
mod pins;
mod policy;
mod reference;
mod replicas;
mod rest_api;
mod router;
mod routes;
mod surfaces;
mod third_party;
mod tracing;
mod upstreams;
mod vault;
