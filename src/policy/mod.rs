//! Policy: may this caller use this tool?
//!
//! Today the decision is the role check: a tool is allowed when the caller's
//! role lists it. An unknown tool gets exactly the same refusal as a forbidden
//! one, so an agent cannot probe what exists. OPA Rego evaluation will run
//! here too, after the role check and before anything reaches an upstream.

use crate::catalog::{Catalog, ToolRoute};
use crate::identity::Caller;

/// The refusal. It carries nothing about whether the tool exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("tool not permitted")]
pub struct NotPermitted;

/// The route of `tool` when `caller`'s role may use it.
pub fn authorize<'c>(
    catalog: &'c Catalog,
    caller: &Caller,
    tool: &str,
) -> Result<&'c ToolRoute, NotPermitted> {
    let allowed = catalog
        .role_view(&caller.role)
        .is_some_and(|view| view.allows(tool));
    if !allowed {
        return Err(NotPermitted);
    }
    catalog.tool(tool).ok_or(NotPermitted)
}
