//! limit: the catalog's rate limits ([`crate::router::limits`]) on tool
//! calls, after the policy allowed the call (a refused call spends no
//! token) and before a credential is minted or the upstream is contacted.
//! A refusal is 429 `rate_limited` with `Retry-After`, and recorded. With
//! `redis:` in the catalog the buckets are every replica's, in Redis (one
//! round trip per call); when Redis does not answer in time, this
//! replica's own.

use futures::future::BoxFuture;

use crate::pipeline::stage::Stage;
use crate::pipeline::{Exchange, PipelineError};
use crate::router::limits::Call;
use crate::vocabulary::Action;

pub struct Limit;

impl Stage for Limit {
    fn name(&self) -> &'static str {
        "limit"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        Box::pin(limit(exchange))
    }
}

async fn limit(exchange: &mut Exchange<'_>) -> Result<(), PipelineError> {
    let snapshot = exchange.snapshot.clone();
    let limits = &snapshot.limits;
    let (Action::Call, Some(to)) = (exchange.action, &exchange.authorized) else {
        return Ok(());
    };
    if limits.is_empty() {
        return Ok(());
    }
    let caller = exchange.caller();
    let call = Call {
        agent: &caller.agent_id,
        role: &caller.role,
        tool: &to.name,
    };
    let checked = match &snapshot.shared {
        Some(shared) => limits.check_shared(&call, shared).await,
        None => limits.check(&call),
    };
    checked.map_err(|refusal| {
        exchange.record().reasons = vec![format!("rate limit `{}`", refusal.limit)];
        refusal.into()
    })
}
