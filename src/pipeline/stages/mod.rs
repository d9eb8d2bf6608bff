//! The stages of the request path, one file each, in the order a request
//! meets them. [`standard`] assembles the lists; adding a capability (a
//! rate limit, a circuit breaker, a result filter) is one more file here
//! and one more line there.

mod admit;
mod arguments;
mod authorize;
mod cache_hints;
pub mod call;
mod circuit;
mod concurrency;
mod credential;
mod deadline;
mod detect;
pub mod dispatch;
mod limit;
mod pins;
mod public_names;
pub mod record;
mod request_state;
mod resolve;
mod result_size;
mod results;
mod split;
mod task_ids;
mod upstream_meta;

use crate::audit::AuditLog;

pub use authorize::Facts;
pub use task_ids::{TaskRef, unknown_task};

use super::stage::Stage;

/// The stages of a request, in two lists.
pub struct Stages {
    /// Every request takes these, once: who asks, for what, whether it may.
    pub request: Vec<Box<dyn Stage>>,
    /// Each request to an upstream takes these: once per attempt, and per
    /// leg of a fan-out ([`dispatch`]).
    pub leg: Vec<Box<dyn Stage>>,
}

/// The stages, in order:
///
/// ```text
/// request: record -> admit -> resolve -> split -> pins -> deadline -> detect -> authorize -> limit -> results -> dispatch
/// leg:     arguments -> circuit -> concurrency -> request_state -> task_ids -> credential -> cache_hints -> result_size -> public_names -> upstream_meta -> call
/// ```
///
/// `dispatch` runs the leg stages once, again for a retry, or once per
/// server of a fan-out. `results` acts only on the way back, first of the
/// request's stages: on the answer as it will leave (a fan-out's merged). `cache_hints` acts only on the way back, on what
/// the upstream answered, as do `result_size`, `public_names` (a tool's
/// error text names it by its public name) and `upstream_meta` (first:
/// the `_meta` keys a server may not set go before anything reads them); `request_state` and
/// `task_ids` on both ways, on a multi round-trip request's state and on
/// task ids.
pub fn standard(audit: AuditLog) -> Stages {
    Stages {
        request: vec![
            Box::new(record::Record::new(audit)),
            Box::new(admit::Admit),
            Box::new(resolve::Resolve),
            Box::new(split::Split),
            Box::new(pins::Pins),
            Box::new(deadline::Deadline),
            Box::new(detect::Detect),
            Box::new(authorize::Authorize),
            Box::new(limit::Limit),
            Box::new(results::Results),
        ],
        leg: vec![
            Box::new(arguments::Arguments),
            Box::new(circuit::Circuit),
            Box::new(concurrency::Concurrency),
            Box::new(request_state::RequestState::new()),
            Box::new(task_ids::TaskIds::new()),
            Box::new(credential::Credential),
            Box::new(cache_hints::CacheHints),
            Box::new(result_size::ResultSize),
            Box::new(public_names::PublicNames),
            Box::new(upstream_meta::UpstreamMeta),
        ],
    }
}
