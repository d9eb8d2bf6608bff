//! Integration tests: the control plane binary on an ephemeral port, talking
//! to real MCP servers (stdio children and Streamable HTTP on loopback)
//! through real HTTP.

mod check;
mod mcp;
mod common;
mod rest_api;
mod upstreams;
