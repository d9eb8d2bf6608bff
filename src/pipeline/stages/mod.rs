//! The stages of the request path, one file each, in the order a request
//! meets them. [`standard`] assembles the list; adding a capability (a
//! rate limit, a circuit breaker, a result filter) is one more file here
//! and one more line there.

mod admit;
mod authorize;
mod cache_hints;
pub mod call;
mod circuit;
mod concurrency;
mod credential;
mod limit;
pub mod record;
mod request_state;
mod resolve;
mod task_ids;

use crate::audit::AuditLog;

pub use authorize::Facts;
pub use task_ids::{TaskRef, unknown_task};

use super::stage::Stage;

/// The stages every request takes, in order:
///
/// ```text
/// record -> admit -> resolve -> authorize -> limit -> circuit -> concurrency
///        -> request_state -> task_ids -> credential -> cache_hints -> (call | list)
/// ```
///
/// `cache_hints` acts only on the way back, on what the upstream answered;
/// `request_state` and `task_ids` on both ways, on a multi round-trip
/// request's state and on task ids.
pub fn standard(audit: AuditLog) -> Vec<Box<dyn Stage>> {
    vec![
        Box::new(record::Record::new(audit)),
        Box::new(admit::Admit),
        Box::new(resolve::Resolve),
        Box::new(authorize::Authorize),
        Box::new(limit::Limit),
        Box::new(circuit::Circuit),
        Box::new(concurrency::Concurrency),
        Box::new(request_state::RequestState::new()),
        Box::new(task_ids::TaskIds::new()),
        Box::new(credential::Credential),
        Box::new(cache_hints::CacheHints),
    ]
}
